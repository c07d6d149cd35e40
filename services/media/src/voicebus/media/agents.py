"""The agent's profile (engines, turn-taking), asked of the orchestrator when a call is claimed.

A call must go on whatever happens to the lookup: when the orchestrator does not
answer in time, answers with an error, or answers nonsense, media serves the call
with the default engines and turn settings, and says so in a ``call.error``
event (``unknown_agent`` when the orchestrator does not know the agent,
``internal`` otherwise) so that operators see the agent's own settings were not
used.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import ValidationError

from voicebus.contracts.events import ErrorCode
from voicebus.contracts.rpc import AGENTS_GET, AgentProfile, AgentReply, EngineChoice, GetAgent
from voicebus.media.metrics import AGENT_LOOKUPS

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
    attempts: int = 2,
) -> Lookup:
    """Ask ``vb.rpc.orchestrator.agents.get`` for the agent; fall back to ``defaults``.

    Args:
        nc: a connected client.
        tenant_id: the call's tenant.
        agent_id: the call's agent.
        defaults: used when the lookup fails.
        timeout_s: per attempt.
        attempts: tries when nobody answers (the orchestrator may be starting).
    """
    body = GetAgent(tenant_id=tenant_id, agent_id=agent_id).model_dump_json().encode()
    for attempt in range(attempts):
        try:
            msg = await nc.request(AGENTS_GET, body, timeout=timeout_s)
        except (NatsTimeoutError, NoRespondersError, TimeoutError):
            if attempt + 1 < attempts:
                await asyncio.sleep(min(0.5, timeout_s))
            continue
        return _answer(msg.data, defaults)
    AGENT_LOOKUPS.labels("failed").inc()
    log.warning("agent lookup unanswered", extra={"agent_id": agent_id})
    return _defaults(defaults, ErrorCode.INTERNAL, "agent profile lookup got no answer")


def _answer(raw: bytes, defaults: AgentProfile) -> Lookup:
    try:
        reply = AgentReply.model_validate_json(raw)
    except ValidationError:
        AGENT_LOOKUPS.labels("failed").inc()
        log.warning("agent lookup reply malformed")
        return _defaults(defaults, ErrorCode.INTERNAL, "agent profile reply is malformed")
    if reply.ok and reply.agent is not None:
        AGENT_LOOKUPS.labels("ok").inc()
        return Lookup(reply.agent)
    error = reply.error
    if error is not None and error.status == 404:
        AGENT_LOOKUPS.labels("not_found").inc()
        message = f"orchestrator does not know the agent ({error.code})"
        return _defaults(defaults, ErrorCode.UNKNOWN_AGENT, message)
    AGENT_LOOKUPS.labels("failed").inc()
    code = error.code if error is not None else "no error given"
    return _defaults(defaults, ErrorCode.INTERNAL, f"agent profile lookup failed ({code})")


def _defaults(defaults: AgentProfile, code: ErrorCode, why: str) -> Lookup:
    return Lookup(defaults, (code, f"{why}; media uses the default engines and turn settings"))
