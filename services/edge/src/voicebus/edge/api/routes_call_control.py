"""A live call's controls: transfer it, press keys in it, hang it up.

The call must be the tenant's (audit answers 404 for another tenant's) and not
ended (409); the command then goes to the gateway holding the call's stream on
``vb.ctl.<call>.<verb>``, and what happens is reported as the call's events.
"""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from voicebus.contracts.commands import (
    ControlCommand,
    HangUp,
    HangUpData,
    SendDtmf,
    SendDtmfData,
    Transfer,
    TransferData,
    TransferMode,
)
from voicebus.contracts.rpc import CALLS_GET, CallReply, GetCall
from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError
from voicebus.edge.api.schemas import CallIdPath
from voicebus.edge.tenancy.keys import Scope


class TransferBody(BaseModel):
    """Body of ``POST /calls/{call_id}/transfer``."""

    to_number: str = Field(pattern=r"^\+[1-9][0-9]{1,14}$", description="Target, E.164.",
                           examples=["+14155550123"])  # fmt: skip
    mode: TransferMode = Field(default=TransferMode.COLD, description="cold or warm.")
    announcement: str | None = Field(
        default=None, max_length=2048, description="Warm: what the target hears first."
    )


class DtmfBody(BaseModel):
    """Body of ``POST /calls/{call_id}/dtmf``."""

    digits: str = Field(pattern=r"^[0-9*#A-Dw]{1,64}$", description="Keys ('w': 0.5 s pause).",
                        examples=["1w2#"])  # fmt: skip


class Accepted(BaseModel):
    """The command was sent to the call."""

    call_id: str
    command: str = Field(examples=["transfer"])


def call_control_router(edge: Edge) -> APIRouter:
    """``/calls/{call_id}/transfer|dtmf|hangup``."""
    router = APIRouter(prefix="/calls", tags=["calls"], responses=ERROR_RESPONSES)
    writer = edge.auth.tenant(Scope.CALLS_WRITE)

    async def send(call_id: str, tenant_id: str, command: ControlCommand) -> Accepted:
        reply = await edge.owners.ask(CALLS_GET, GetCall(tenant_id=tenant_id, call_id=call_id),
                                      CallReply)  # fmt: skip
        if reply.call is None:
            raise ApiError(404, "call_not_found", f"no call {call_id!r}")
        if reply.call.status == "ended":
            raise ApiError(409, "call_ended", f"call {call_id!r} has ended")
        try:
            await edge.owners.bus.control(command)
        except Exception as err:  # a bus failure of any kind: nothing was sent
            raise ApiError(503, "bus_unavailable", f"not sent: {type(err).__name__}",
                           headers={"Retry-After": "1"}) from None  # fmt: skip
        return Accepted(call_id=call_id, command=command.verb.value)

    @router.post("/{call_id}/transfer", status_code=202, response_model=Accepted)
    async def transfer(
        call_id: CallIdPath, body: TransferBody, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> Accepted:
        """Transfer the caller (warm where the provider can)."""
        data = TransferData(to_number=body.to_number, mode=body.mode,
                            announcement=body.announcement)  # fmt: skip
        command = Transfer(tenant_id=who.tenant_id, call_id=call_id, source=edge.source,
                           data=data)  # fmt: skip
        return await send(call_id, who.tenant_id, command)

    @router.post("/{call_id}/dtmf", status_code=202, response_model=Accepted)
    async def dtmf(
        call_id: CallIdPath, body: DtmfBody, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> Accepted:
        """Press keypad keys in the call."""
        command = SendDtmf(tenant_id=who.tenant_id, call_id=call_id, source=edge.source,
                           data=SendDtmfData(digits=body.digits))  # fmt: skip
        return await send(call_id, who.tenant_id, command)

    @router.post("/{call_id}/hangup", status_code=202, response_model=Accepted)
    async def hangup(
        call_id: CallIdPath, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> Accepted:
        """Hang the call up now."""
        command = HangUp(tenant_id=who.tenant_id, call_id=call_id, source=edge.source,
                         data=HangUpData(after_playback=False))  # fmt: skip
        return await send(call_id, who.tenant_id, command)

    return router
