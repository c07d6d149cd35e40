"""Caller memory of a tenant: what its agents remember about a caller, and forgetting it.

The orchestrator owns the profiles (``vb.rpc.orchestrator.memory.*``); the number is
personal data, so it is logged by no route here.
"""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from voicebus.contracts.rpc import (
    CALLER_NUMBER_PATTERN,
    MEMORY_DELETE,
    MEMORY_GET,
    CallerMemoryReply,
    CallerProfile,
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


def memory_router(edge: Edge) -> APIRouter:
    """``/memory``."""
    router = APIRouter(prefix="/memory", tags=["memory"], responses=ERROR_RESPONSES)
    reader = edge.auth.tenant(Scope.CALLS_READ)
    writer = edge.auth.tenant(Scope.CALLS_WRITE)
    owners = edge.owners

    async def ask(subject: str, number: str, who: TenantPrincipal) -> CallerProfile:
        request = CallerRef(tenant_id=who.tenant_id, number=number)
        reply = await owners.ask(subject, request, CallerMemoryReply)
        if reply.profile is None:  # an ok reply always carries it; be strict anyway
            raise ApiError(404, "caller_not_found", "no memory of this caller")
        return reply.profile

    @router.get("/{number}", response_model=CallerProfile)
    async def get_memory(
        number: NumberPath, who: Annotated[TenantPrincipal, Depends(reader)]
    ) -> CallerProfile:
        """What the tenant's agents remember about a caller (404: nothing)."""
        return await ask(MEMORY_GET, number, who)

    @router.delete("/{number}", response_model=CallerProfile)
    async def delete_memory(
        number: NumberPath, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> CallerProfile:
        """Forget a caller: the profile is deleted and returned (404: nothing was kept)."""
        return await ask(MEMORY_DELETE, number, who)

    return router
