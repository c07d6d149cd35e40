"""The orchestrator's request/reply subscribers: parse, look up, answer."""

from __future__ import annotations

import logging

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from voicebus.contracts.rpc import AGENTS_GET, AgentReply, GetAgent, RpcError
from voicebus.orchestrator import metrics
from voicebus.orchestrator.agents import AgentCatalog
from voicebus.orchestrator.calls import Orchestrator

log = logging.getLogger(__name__)

QUEUE_GROUP = "orchestrator-agents"


def get_agent(raw: bytes, catalog: AgentCatalog) -> AgentReply:
    """The answer to a ``GetAgent`` request body: the profile, 400 or 404."""
    try:
        request = GetAgent.model_validate_json(raw)
    except ValidationError as exc:
        metrics.BAD_INPUT.labels("rpc").inc()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return AgentReply(
            ok=False, error=RpcError(status=400, code="bad_request", message=problems[:1024])
        )
    agent = catalog.get(request.agent_id)
    if agent is None or not agent.serves(request.tenant_id):
        message = f"no agent {request.agent_id!r} for tenant {request.tenant_id!r}"
        return AgentReply(
            ok=False, error=RpcError(status=404, code="agent_not_found", message=message[:1024])
        )
    return AgentReply(ok=True, agent=agent.profile)


def register(broker: NatsBroker, orchestrator: Orchestrator) -> None:
    """Declare the orchestrator's RPC subscribers on ``broker``."""

    @broker.subscriber(
        AGENTS_GET,
        queue=QUEUE_GROUP,
        description="Look an agent up (GetAgent → AgentReply); one orchestrator answers.",
    )
    async def agents_get(msg: NatsMessage) -> AgentReply:
        return get_agent(msg.body, orchestrator.catalog)
