"""Right to erasure: ``DELETE /callers/{number}`` erases a caller's personal data.

The edge asks each owner in turn, always for the key's tenant only: campaigns (the
number's contacts and attempts), audit (calls where the number called or was called:
their events become tombstones, their numbers are cleared, their copies in
``VB_EVENTS`` are purged), the recorder (those calls' recordings), the
orchestrator's caller memory, and the edge's own webhook deliveries of those calls
(the outbox and its log hold the events' bodies). Then it publishes
``caller.erased.v1`` with the counts and a digest of the number, never the number.
Every step is idempotent: a request that failed half-way (an owner down: 503) is
simply repeated.
"""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from voicebus.contracts.erasure import (
    AUDIT_ERASE,
    CAMPAIGNS_ERASE,
    MAX_CALLS,
    RECORDINGS_ERASE,
    AuditErased,
    CampaignsErased,
    EraseCaller,
    EraseRecordings,
    RecordingsErased,
    number_digest,
)
from voicebus.contracts.events import CallerErased, CallerErasedData
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import (
    CALLER_NUMBER_PATTERN,
    MEMORY_DELETE,
    CallerMemoryReply,
    CallerRef,
)
from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError
from voicebus.edge.tenancy.keys import Scope

NumberPath = Annotated[
    str,
    Path(pattern=CALLER_NUMBER_PATTERN, description="The caller's number (E.164).",
         examples=["+14155550100"]),
]  # fmt: skip


class ErasureReport(BaseModel):
    """What ``DELETE /callers/{number}`` erased (also published as ``caller.erased.v1``)."""

    erasure_id: str = Field(
        description="Id of the erasure: the call slot of its caller.erased.v1 event.",
        examples=["0193a5f2-7c1e-7a3b-9f00-5d2c8e1b4a77"],
    )
    erased: CallerErasedData


def callers_router(edge: Edge) -> APIRouter:
    """``/callers``."""
    router = APIRouter(prefix="/callers", tags=["privacy"], responses=ERROR_RESPONSES)
    admin = edge.auth.tenant(Scope.ADMIN)
    owners = edge.owners

    async def forget(tenant_id: str, number: str) -> int:
        try:
            await owners.ask(MEMORY_DELETE, CallerRef(tenant_id=tenant_id, number=number),
                             CallerMemoryReply)  # fmt: skip
        except ApiError as err:
            if err.status == 404:
                return 0
            raise
        return 1

    async def erase_recordings(tenant_id: str, call_ids: list[str]) -> int:
        deleted = 0
        for start in range(0, len(call_ids), MAX_CALLS):
            page = call_ids[start : start + MAX_CALLS]
            request = EraseRecordings(tenant_id=tenant_id, call_ids=page)
            deleted += (await owners.ask(RECORDINGS_ERASE, request, RecordingsErased)).recordings
        return deleted

    @router.delete("/{number}", response_model=ErasureReport)
    async def erase_caller(
        number: NumberPath, who: Annotated[TenantPrincipal, Depends(admin)]
    ) -> ErasureReport:
        """Erase a caller's personal data across the platform (right to erasure).

        Campaign contacts and attempts with the number are deleted (do-not-call entries
        stay); every call where the number called or was called has its stored events'
        data replaced by a tombstone (hash chains stay verifiable), its numbers cleared,
        its recording deleted and its webhook deliveries (pending or logged) deleted; the
        caller's memory is forgotten. Repeating the
        request is safe and erases what arrived since. Needs the ``admin`` scope.
        """
        tenant = who.tenant_id
        request = EraseCaller(tenant_id=tenant, number=number)
        campaigns = await owners.ask(CAMPAIGNS_ERASE, request, CampaignsErased)
        audit = await owners.ask(AUDIT_ERASE, request, AuditErased)
        call_ids = sorted(set(audit.call_ids) | set(campaigns.call_ids))
        data = CallerErasedData(
            number_sha256=number_digest(tenant, number),
            audit_calls=audit.calls,
            audit_events=audit.events,
            recordings=await erase_recordings(tenant, call_ids),
            memory_profiles=await forget(tenant, number),
            campaign_contacts=campaigns.contacts,
            campaign_attempts=campaigns.attempts,
            webhook_deliveries=(
                await edge.webhook_log.erase_calls(tenant, call_ids) if edge.webhook_log else 0
            ),
        )
        erasure_id = new_id()
        event = CallerErased(tenant_id=tenant, call_id=erasure_id, source=edge.source, data=data)
        await owners.bus.publish(event)
        return ErasureReport(erasure_id=erasure_id, erased=data)

    return router
