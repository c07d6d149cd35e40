"""Agent lookup: the orchestrator owns agents; the gateway asks before answering a call."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from pydantic import ValidationError

from voicebus.contracts.events import ErrorCode
from voicebus.contracts.rpc import AGENTS_GET, AgentReply, GetAgent

log = logging.getLogger(__name__)


async def fetch_agent(
    nc: Client, tenant_id: str, agent_id: str, timeout_s: float
) -> AgentReply | None:
    """Ask the orchestrator for an agent (``vb.rpc.orchestrator.agents.get``).

    Returns:
        The reply, or None when nobody answered in time or the answer was not
        an ``AgentReply``: the lookup is unavailable, which says nothing about
        the agent.
    """
    request = GetAgent(tenant_id=tenant_id, agent_id=agent_id)
    try:
        msg = await nc.request(AGENTS_GET, request.model_dump_json().encode(), timeout=timeout_s)
    except nats.errors.NoRespondersError:
        log.warning("agent lookup has no responder", extra={"agent_id": agent_id})
        return None
    except TimeoutError:
        log.warning("agent lookup timed out", extra={"agent_id": agent_id})
        return None
    try:
        return AgentReply.model_validate_json(msg.data)
    except ValidationError as err:
        log.warning("agent lookup reply invalid", extra={"errors": err.error_count()})
        return None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an inbound call cannot be connected to its agent.

    Attributes:
        code: the ``call.error`` code to publish.
        message: what went wrong, no personal data.
        retryable: whether the same call may succeed later.
    """

    code: ErrorCode
    message: str
    retryable: bool


def judge(reply: AgentReply | None, agent_id: str) -> Refusal | None:
    """None when ``reply`` names a usable agent, else why the call is refused."""
    if reply is None:
        return Refusal(ErrorCode.INTERNAL, "agent lookup unavailable: no answer in time", True)
    if reply.ok and reply.agent is not None:
        return None
    error = reply.error
    if error is None or error.status == 404:
        return Refusal(ErrorCode.UNKNOWN_AGENT, f"unknown agent {agent_id!r}", False)
    return Refusal(
        ErrorCode.INTERNAL,
        f"agent lookup failed: {error.code} (status {error.status})",
        error.status >= 500,
    )
