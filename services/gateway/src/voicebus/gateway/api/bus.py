"""The REST edge's side of the bus: ask the owning service, queue commands.

A missing owner answers 503 quickly: NATS reports "no responders" at once
(retried briefly, as an owner that just restarted may not be subscribed yet),
and a silent owner is given up on after ``VB_GATEWAY_RPC_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final, Protocol, TypeVar

import nats.errors
from pydantic import BaseModel, ValidationError

from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.rpc import RpcError
from voicebus.gateway.api.errors import ApiError
from voicebus.gateway.api.request_id import REQUEST_ID
from voicebus.gateway.context import Gateway
from voicebus.runtime.publish import send_command

log = logging.getLogger(__name__)

ReplyT = TypeVar("ReplyT", bound=BaseModel)
_RETRY_S: Final = 0.05
_UNAVAILABLE: Final = {"Retry-After": "1"}


class EdgeBus(Protocol):
    """What the routes need from the bus (a fake in component tests)."""

    async def request(self, subject: str, body: bytes, timeout_s: float) -> bytes:
        """Send a request; the reply's body.

        Raises:
            nats.errors.NoRespondersError: nobody subscribes to ``subject``.
            TimeoutError: nobody answered in time.
        """
        ...

    async def originate(self, command: OriginateCall) -> None:
        """Queue ``command`` on ``VB_COMMANDS`` (stored once the call returns)."""
        ...


class GatewayBus:
    """:class:`EdgeBus` over the running gateway's connections."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def request(self, subject: str, body: bytes, timeout_s: float) -> bytes:
        """Request/reply on the raw client."""
        headers = {"content-type": "application/json"}
        request_id = REQUEST_ID.get()
        if request_id is not None:
            headers["X-Request-Id"] = request_id
        msg = await self._gateway.nc.request(subject, body, timeout=timeout_s, headers=headers)
        return bytes(msg.data)

    async def originate(self, command: OriginateCall) -> None:
        """JetStream publish with the server's ack."""
        await send_command(self._gateway.service.broker, command)


class Owners:
    """Typed request/reply to the services that own the data.

    Args:
        bus: the bus.
        timeout_s: how long to wait for an owner.
    """

    def __init__(self, bus: EdgeBus, timeout_s: float) -> None:
        self.bus = bus
        self.timeout_s = timeout_s

    async def ask(self, subject: str, request: BaseModel, reply_type: type[ReplyT]) -> ReplyT:
        """The owner's reply to ``request``; an ``ok=False`` reply becomes its ``ApiError``.

        Raises:
            ApiError: 503 (no owner, or it did not answer in time), 502 (an invalid
                reply) or the status of the owner's ``RpcError``.
        """
        raw = await self._request(subject, request.model_dump_json().encode())
        try:
            reply = reply_type.model_validate_json(raw)
        except ValidationError as err:
            log.warning(
                "owner reply invalid",
                extra={
                    "subject": subject,
                    "errors": err.error_count(),
                    "request_id": REQUEST_ID.get(),
                },
            )
            raise ApiError(
                502, "bad_owner_reply", "the owning service sent an invalid reply"
            ) from None
        error = getattr(reply, "error", None)
        if getattr(reply, "ok", True) is False:
            raise _owner_error(error if isinstance(error, RpcError) else None)
        return reply

    async def _request(self, subject: str, body: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        no_responder = False
        while True:
            remaining = deadline - loop.time()
            try:
                return await self.bus.request(subject, body, max(remaining, 0.001))
            except nats.errors.NoRespondersError:
                no_responder = True
                if remaining <= _RETRY_S:
                    raise _unavailable(subject) from None
                await asyncio.sleep(_RETRY_S)
            except TimeoutError:
                if no_responder:
                    # The last retry ran out of time before the server's "no responders"
                    # came back: the owner is still missing, not slow.
                    raise _unavailable(subject) from None
                log.warning(
                    "owner timed out", extra={"subject": subject, "request_id": REQUEST_ID.get()}
                )
                raise ApiError(
                    503,
                    "owner_timeout",
                    "the service owning this data did not answer in time",
                    headers=_UNAVAILABLE,
                ) from None
            except nats.errors.Error:
                log.warning(
                    "owner request failed",
                    extra={"subject": subject, "request_id": REQUEST_ID.get()},
                )
                raise ApiError(
                    503, "bus_unavailable", "the message bus is unavailable", headers=_UNAVAILABLE
                ) from None


def _owner_error(error: RpcError | None) -> ApiError:
    if error is None:
        return ApiError(502, "bad_owner_reply", "the owning service failed without a reason")
    return ApiError(error.status, error.code, error.message)


def _unavailable(subject: str) -> ApiError:
    """503: nobody serves ``subject`` (the owning service is not running)."""
    log.warning(
        "owner has no responder", extra={"subject": subject, "request_id": REQUEST_ID.get()}
    )
    return ApiError(
        503,
        "owner_unavailable",
        "the service owning this data is not running",
        headers=_UNAVAILABLE,
    )
