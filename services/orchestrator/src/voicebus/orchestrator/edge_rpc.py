"""The orchestrator's answers to the REST edge: the agents a tenant may use.

An agent file may name its ``tenants``; one that names none serves every tenant.
"""

from __future__ import annotations

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from voicebus.contracts.rpc import AGENTS_LIST, AgentsPage, ListAgents, RpcError
from voicebus.orchestrator import metrics
from voicebus.orchestrator.agents import AgentCatalog
from voicebus.orchestrator.calls import Orchestrator
from voicebus.orchestrator.handlers import QUEUE_GROUP


def list_agents(raw: bytes, catalog: AgentCatalog) -> AgentsPage:
    """The answer to a ``ListAgents`` request body: the tenant's agents' profiles, or 400."""
    try:
        request = ListAgents.model_validate_json(raw)
    except ValidationError as exc:
        metrics.BAD_INPUT.labels("rpc").inc()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return AgentsPage(
            ok=False, error=RpcError(status=400, code="bad_request", message=problems[:1024])
        )
    profiles = []
    for agent_id in catalog.ids():
        agent = catalog.get(agent_id)
        if agent is not None and agent.serves(request.tenant_id):
            profiles.append(agent.profile)
    return AgentsPage(ok=True, agents=profiles)


def register_edge(broker: NatsBroker, orchestrator: Orchestrator) -> None:
    """Declare the edge's agent queries on ``broker``."""

    @broker.subscriber(
        AGENTS_LIST,
        queue=QUEUE_GROUP,
        description="List agents (ListAgents → AgentsPage); one orchestrator answers.",
    )
    async def agents_list(msg: NatsMessage) -> AgentsPage:
        return list_agents(msg.body, orchestrator.catalog)
