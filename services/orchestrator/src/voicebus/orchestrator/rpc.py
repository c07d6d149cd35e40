"""The orchestrator's answers on ``vb.rpc.orchestrator.*``: the agents a tenant may use.

An agent file may name its ``tenants``; one that names none serves every tenant.
Another tenant's agent is not found, never a match.
"""

from __future__ import annotations

from faststream.nats import NatsBroker

from voicebus.contracts.rpc import (
    AGENTS_GET,
    AGENTS_LIST,
    AgentReply,
    AgentsPage,
    GetAgent,
    ListAgents,
)
from voicebus.orchestrator.agents import AgentCatalog
from voicebus.orchestrator.calls import Orchestrator
from voicebus.runtime.rpc import NotFound, responder

QUEUE_GROUP = "orchestrator-rpc"


def get_agent(request: GetAgent, catalog: AgentCatalog) -> AgentReply:
    """The agent's profile.

    Raises:
        NotFound: no such agent for the request's tenant.
    """
    agent = catalog.get(request.agent_id)
    if agent is None or not agent.serves(request.tenant_id):
        message = f"no agent {request.agent_id!r} for tenant {request.tenant_id!r}"
        raise NotFound(message, code="agent_not_found")
    return AgentReply(ok=True, agent=agent.profile)


def list_agents(request: ListAgents, catalog: AgentCatalog) -> AgentsPage:
    """The profiles of the agents the request's tenant may use, by id."""
    profiles = []
    for agent_id in catalog.ids():
        agent = catalog.get(agent_id)
        if agent is not None and agent.serves(request.tenant_id):
            profiles.append(agent.profile)
    return AgentsPage(ok=True, agents=profiles)


def register(broker: NatsBroker, orchestrator: Orchestrator) -> None:
    """Declare the orchestrator's responders on ``broker`` (one instance answers each)."""

    async def agents_get(request: GetAgent) -> AgentReply:
        return get_agent(request, orchestrator.catalog)

    async def agents_list(request: ListAgents) -> AgentsPage:
        return list_agents(request, orchestrator.catalog)

    responder(broker, AGENTS_GET, GetAgent, AgentReply, agents_get, queue=QUEUE_GROUP,
              description="Look an agent up (GetAgent → AgentReply).")  # fmt: skip
    responder(broker, AGENTS_LIST, ListAgents, AgentsPage, agents_list, queue=QUEUE_GROUP,
              description="List a tenant's agents (ListAgents → AgentsPage).")  # fmt: skip
