"""The agent's profile (engines, turn-taking), asked of the orchestrator when a call is claimed.

A call must go on whatever happens to the lookup: when the orchestrator does not
answer in time, answers with an error, or answers nonsense, media serves the call
with the default engines and turn settings, and says so in a ``call.error``
event (``unknown_agent`` when the orchestrator does not know the agent,
``internal`` otherwise) so that operators see the agent's own settings were not
used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.aio.client import Client

from voicebus.contracts.events import ErrorCode
from voicebus.contracts.rpc import AGENTS_GET, AgentProfile, AgentReply, EngineChoice, GetAgent
from voicebus.media.metrics import AGENT_LOOKUPS
from voicebus.runtime.rpc import BadReply, RemoteError, RpcClient, RpcFault

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Lookup:
    """The profile to use and, when it is the default one, why.

    Attributes:
        profile: the agent's profile, or the defaults.
        problem: None when the orchestrator answered with the agent; else the
            error code and message for the ``call.error`` event.
    """

    profile: AgentProfile
    problem: tuple[ErrorCode, str] | None = None


def default_profile(agent_id: str, stt: str, tts: str) -> AgentProfile:
    """The profile a call gets when the agent's own is not available."""
    return AgentProfile(
        agent_id=agent_id,
        name=agent_id,
        stt=EngineChoice(engine=stt),
        tts=EngineChoice(engine=tts),
    )


async def fetch_profile(
    nc: Client,
    tenant_id: str,
    agent_id: str,
    defaults: AgentProfile,
    *,
    timeout_s: float = 2.0,
) -> Lookup:
    """Ask ``vb.rpc.orchestrator.agents.get`` for the agent; fall back to ``defaults``.

    Args:
        nc: a connected client.
        tenant_id: the call's tenant.
        agent_id: the call's agent.
        defaults: used when the lookup fails.
        timeout_s: budget of the lookup, retries included (the orchestrator may be
            starting: "no responders" is asked again within it).
    """
    request = GetAgent(tenant_id=tenant_id, agent_id=agent_id)
    try:
        reply = await RpcClient(nc, timeout_s=timeout_s).ask(AGENTS_GET, request, AgentReply)
    except RemoteError as refused:
        if refused.status == 404:
            AGENT_LOOKUPS.labels("not_found").inc()
            message = f"orchestrator does not know the agent ({refused.code})"
            return _defaults(defaults, ErrorCode.UNKNOWN_AGENT, message)
        AGENT_LOOKUPS.labels("failed").inc()
        return _defaults(
            defaults, ErrorCode.INTERNAL, f"agent profile lookup failed ({refused.code})"
        )
    except BadReply:
        AGENT_LOOKUPS.labels("failed").inc()
        return _defaults(defaults, ErrorCode.INTERNAL, "agent profile reply is malformed")
    except RpcFault:
        AGENT_LOOKUPS.labels("failed").inc()
        log.warning("agent lookup unanswered", extra={"agent_id": agent_id})
        return _defaults(defaults, ErrorCode.INTERNAL, "agent profile lookup got no answer")
    if reply.agent is None:
        AGENT_LOOKUPS.labels("failed").inc()
        return _defaults(defaults, ErrorCode.INTERNAL, "agent profile reply has no agent")
    AGENT_LOOKUPS.labels("ok").inc()
    return Lookup(reply.agent)


def _defaults(defaults: AgentProfile, code: ErrorCode, why: str) -> Lookup:
    return Lookup(defaults, (code, f"{why}; media uses the default engines and turn settings"))
