"""The asker's side: a typed request within a time budget, typed faults otherwise.

Retries happen only where the request certainly did not run twice, or where running
it twice is harmless:

- "no responders" (nobody subscribes: the owner is starting, or its subscription has
  not reached this server yet) is retried until the budget is spent;
- a timeout is retried, for an *idempotent* request only, while at least a second
  attempt fits in the budget: each attempt gets ``attempt_s`` (half the budget by
  default), so a request taken by a queue-group member that died before answering
  is asked again of a live member instead of hanging the asker. A request that
  changes something is asked once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, TypeVar

import nats.errors
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from voicebus.contracts.rpc import Reply
from voicebus.runtime.rpc.faults import (
    BadReply,
    OwnerTimeout,
    OwnerUnavailable,
    RemoteError,
    RpcFault,
)
from voicebus.runtime.rpc.server import REQUEST_ID, REQUEST_ID_HEADER, rpc_name
from voicebus.runtime.rpc.tenancy import is_tenant_scoped, tenant_of
from voicebus.runtime.telemetry import inject_trace_context
from voicebus.runtime.tenant_keys import TenantSigner

log = logging.getLogger(__name__)

ReplyT = TypeVar("ReplyT", bound=Reply)

ASKED = Counter(
    "voicebus_rpc_asked", "Requests sent, by procedure and outcome.", ["rpc", "outcome"]
)
_PAUSE_S: Final = 0.05
_JSON: Final = "application/json"


class Message(Protocol):
    """A reply as the requester hands it back (nats-py's ``Msg``)."""

    @property
    def data(self) -> bytes:
        """The reply body."""
        ...


class Requester(Protocol):
    """What sends a request: nats-py's ``Client``, or a fake in component tests.

    Raises from :meth:`request` as nats-py does: ``nats.errors.NoRespondersError``
    when nobody subscribes, ``TimeoutError`` when nobody answered in time, another
    ``nats.errors.Error`` when the connection is unusable.
    """

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float = 0.5,
        old_style: bool = False,
        headers: dict[str, Any] | None = None,
    ) -> Message:
        """Send ``payload`` to ``subject`` and wait for one reply."""
        ...


class RpcClient:
    """Asks the owners of data over NATS request/reply.

    Args:
        nc: the raw NATS client (or a fake), or a function returning it (a
            service's client exists only once it started).
        timeout_s: default budget of one :meth:`ask`, retries included.
        attempt_s: how long one attempt of an idempotent request waits before it is
            asked again (a member of the queue group may have died holding it); half
            the budget when None. Make it well above the owner's slowest answer.
        signer: the edge's key (the edge and operator tools): each tenant-scoped request
            is signed for the tenant its body names (:mod:`.tenancy`).
    """

    def __init__(
        self,
        nc: Requester | Callable[[], Requester],
        *,
        timeout_s: float,
        attempt_s: float | None = None,
        signer: TenantSigner | None = None,
    ) -> None:
        self._nc = nc
        self.timeout_s = timeout_s
        self.attempt_s = attempt_s
        self._signer = signer

    @property
    def nc(self) -> Requester:
        """The connection requests go out on."""
        return self._nc() if callable(self._nc) else self._nc

    async def ask(
        self,
        subject: str,
        request: BaseModel,
        reply_type: type[ReplyT],
        *,
        timeout_s: float | None = None,
        idempotent: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> ReplyT:
        """The owner's ``ok`` reply to ``request``.

        Args:
            subject: ``vb.rpc.<service>.<resource>.<verb>``.
            request: the request body.
            reply_type: the reply's model.
            timeout_s: budget for this request (default: the client's).
            idempotent: the request may be sent again after a timeout.
            headers: extra headers (the current ``X-Request-Id`` is added).

        Raises:
            RemoteError: the owner answered ``ok=False`` (its status and code).
            OwnerUnavailable: nobody serves ``subject``, or NATS is unusable.
            OwnerTimeout: the owner did not answer within the budget.
            BadReply: the reply is not a ``reply_type``.
        """
        rpc = rpc_name(subject)
        try:
            raw = await self._request(subject, request, timeout_s, idempotent, headers)
            reply = _parse(raw, reply_type, subject)
        except RpcFault as fault:
            ASKED.labels(rpc, fault.code).inc()
            raise
        ASKED.labels(rpc, "ok").inc()
        return reply

    async def _request(
        self,
        subject: str,
        request: BaseModel,
        timeout_s: float | None,
        idempotent: bool,
        extra: Mapping[str, str] | None,
    ) -> bytes:
        body = request.model_dump_json().encode()
        # The caller's trace goes along: the owner's answer is a span in it.
        headers = inject_trace_context({"content-type": _JSON, **(extra or {})})
        request_id = REQUEST_ID.get()
        if request_id is not None:
            headers[REQUEST_ID_HEADER] = request_id
        if self._signer is not None and is_tenant_scoped(subject, type(request)):
            headers.update(self._signer.headers(subject, tenant_of(request) or "", body))
        loop = asyncio.get_running_loop()
        budget = self.timeout_s if timeout_s is None else timeout_s
        deadline = loop.time() + budget
        per_attempt = (self.attempt_s or budget / 2) if idempotent else budget
        no_responder = False
        while True:
            remaining = deadline - loop.time()
            wait = max(min(remaining, per_attempt), 0.001)
            try:
                msg = await self.nc.request(subject, body, timeout=wait, headers=headers)
            except nats.errors.NoRespondersError:
                no_responder = True
                if remaining <= _PAUSE_S:
                    raise _unavailable(subject) from None
                await asyncio.sleep(_PAUSE_S)
                continue
            except TimeoutError:
                left = deadline - loop.time()
                if idempotent and left > _PAUSE_S:
                    log.info("rpc attempt timed out, asking again", extra={"subject": subject})
                    continue
                if no_responder:
                    # The last retry ran out of time before the server's "no responders"
                    # came back: the owner is still missing, not slow.
                    raise _unavailable(subject) from None
                log.warning(
                    "rpc owner timed out", extra={"subject": subject, "request_id": request_id}
                )
                raise OwnerTimeout("the service owning this data did not answer in time") from None
            except nats.errors.Error:
                log.warning("rpc request failed", extra={"subject": subject}, exc_info=True)
                raise OwnerUnavailable(
                    "the message bus is unavailable", code="bus_unavailable"
                ) from None
            return bytes(msg.data)


def _parse(raw: bytes, reply_type: type[ReplyT], subject: str) -> ReplyT:
    try:
        reply = reply_type.model_validate_json(raw)
    except ValidationError as err:
        log.warning("rpc reply invalid", extra={"subject": subject, "errors": err.error_count()})
        raise BadReply("the owning service sent an invalid reply") from None
    if reply.ok:
        return reply
    if reply.error is None:
        raise BadReply("the owning service failed without a reason")
    raise RemoteError(reply.error)


def _unavailable(subject: str) -> OwnerUnavailable:
    log.warning("rpc owner has no responder", extra={"subject": subject})
    return OwnerUnavailable("the service owning this data is not running")
