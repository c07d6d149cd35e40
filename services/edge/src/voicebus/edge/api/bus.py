"""The REST API's side of the bus: ask the owning service, queue commands.

Requests go through the runtime's request/reply kit: a missing owner is 503 quickly
("no responders" is retried briefly, as an owner that just restarted may not be
subscribed yet), a silent owner is given up on after ``VB_EDGE_RPC_TIMEOUT_S``,
and the owner's own refusal keeps its status and code.
"""

from __future__ import annotations

from typing import Any, Final, Protocol, TypeVar

from pydantic import BaseModel

from voicebus.contracts.commands import ControlCommand, OriginateCall
from voicebus.contracts.events import Envelope
from voicebus.contracts.rpc import Reply
from voicebus.edge.api.errors import ApiError
from voicebus.runtime.publish import publish_event, send_command, send_control
from voicebus.runtime.rpc import RpcClient, RpcFault, TenantSigner
from voicebus.runtime.rpc.client import Message, Requester
from voicebus.runtime.service import Service

ReplyT = TypeVar("ReplyT", bound=Reply)
_RETRY_AFTER: Final = {"Retry-After": "1"}


class EdgeBus(Requester, Protocol):
    """What the routes need from the bus: requests, and the command queue (a fake in
    component tests)."""

    async def originate(self, command: OriginateCall) -> None:
        """Queue ``command`` on ``VB_COMMANDS`` (stored once the call returns)."""
        ...

    async def control(self, command: ControlCommand) -> None:
        """Send a live call's command on ``vb.ctl.<call>.<verb>``."""
        ...

    async def publish(self, event: Envelope) -> None:
        """Store ``event`` in ``VB_EVENTS`` (stored once the call returns)."""
        ...


class ServiceBus:
    """:class:`EdgeBus` over the running edge service's connections."""

    def __init__(self, service: Service) -> None:
        self._service = service

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float = 0.5,
        old_style: bool = False,
        headers: dict[str, Any] | None = None,
    ) -> Message:
        """Request/reply on the service's raw client (usable once the service started)."""
        return await self._service.nc.request(subject, payload, timeout, old_style, headers)

    async def originate(self, command: OriginateCall) -> None:
        """JetStream publish with the server's ack."""
        await send_command(self._service.broker, command)

    async def control(self, command: ControlCommand) -> None:
        """Core NATS: the gateway holding the call's stream acts on it."""
        await send_control(self._service.broker, command)

    async def publish(self, event: Envelope) -> None:
        """JetStream publish with the server's ack."""
        await publish_event(self._service.broker, event)


class Owners:
    """Typed request/reply to the services that own the data.

    Args:
        bus: the bus.
        timeout_s: how long to wait for an owner.
        signer: signs each request for the tenant it names (the owners check it).
    """

    def __init__(self, bus: EdgeBus, timeout_s: float, signer: TenantSigner | None = None) -> None:
        self.bus = bus
        self._client = RpcClient(bus, timeout_s=timeout_s, signer=signer)

    async def ask(
        self,
        subject: str,
        request: BaseModel,
        reply_type: type[ReplyT],
        *,
        idempotent: bool = True,
        timeout_s: float | None = None,
    ) -> ReplyT:
        """The owner's ``ok`` reply to ``request`` (within ``timeout_s``: the default when
        None).

        Raises:
            ApiError: the owner's refusal with its status and code; 503 when no owner
                answers (with ``Retry-After``); 502 for an invalid reply.
        """
        try:
            return await self._client.ask(
                subject, request, reply_type, idempotent=idempotent, timeout_s=timeout_s
            )
        except RpcFault as fault:
            headers = _RETRY_AFTER if fault.status == 503 else None
            raise ApiError(fault.status, fault.code, fault.message, headers=headers) from None
