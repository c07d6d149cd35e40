"""Agents: the orchestrator owns them."""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

from typing import Annotated

from fastapi import APIRouter, Depends

from voicebus.contracts.rpc import (
    AGENTS_GET,
    AGENTS_LIST,
    AgentProfile,
    AgentReply,
    AgentsPage,
    GetAgent,
    ListAgents,
)
from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError
from voicebus.edge.api.schemas import AgentIdPath
from voicebus.edge.tenancy.keys import Scope


def agents_router(edge: Edge) -> APIRouter:
    """``/agents``."""
    router = APIRouter(prefix="/agents", tags=["agents"], responses=ERROR_RESPONSES)
    reader = edge.auth.tenant(Scope.AGENTS_READ)

    @router.get("", response_model=list[AgentProfile])
    async def list_agents(who: Annotated[TenantPrincipal, Depends(reader)]) -> list[AgentProfile]:
        """The agents the tenant's calls can use."""
        page = await edge.owners.ask(AGENTS_LIST, ListAgents(tenant_id=who.tenant_id), AgentsPage)
        return page.agents

    @router.get("/{agent_id}", response_model=AgentProfile)
    async def get_agent(
        agent_id: AgentIdPath, who: Annotated[TenantPrincipal, Depends(reader)]
    ) -> AgentProfile:
        """One agent."""
        request = GetAgent(tenant_id=who.tenant_id, agent_id=agent_id)
        reply = await edge.owners.ask(AGENTS_GET, request, AgentReply)
        if reply.agent is None:
            raise ApiError(404, "agent_not_found", f"no agent {agent_id!r}")
        return reply.agent

    return router
