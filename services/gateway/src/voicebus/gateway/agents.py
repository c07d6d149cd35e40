"""Agent lookup: the orchestrator owns agents; the gateway asks before answering a call."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from pydantic import ValidationError

from voicebus.contracts.events import ErrorCode
from voicebus.contracts.rpc import AGENTS_GET, AgentReply, GetAgent

log = logging.getLogger(__name__)

_NO_RESPONDER_RETRY_S = 0.05
"""Pause between lookups while the orchestrator has no responder."""


async def fetch_agent(
    nc: Client, tenant_id: str, agent_id: str, timeout_s: float
) -> AgentReply | None:
    """Ask the orchestrator for an agent (``vb.rpc.orchestrator.agents.get``).

    Returns:
        The reply, or None when nobody answered in time or the answer was not
        an ``AgentReply``: the lookup is unavailable, which says nothing about
        the agent.
    """
    body = GetAgent(tenant_id=tenant_id, agent_id=agent_id).model_dump_json().encode()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        remaining = deadline - loop.time()
        try:
            msg = await nc.request(AGENTS_GET, body, timeout=max(remaining, 0.001))
            break
        except nats.errors.NoRespondersError:
            # A restarting orchestrator (or one whose subscription has not reached
            # this server yet) answers "no responders" at once: retry within the budget.
            if remaining <= _NO_RESPONDER_RETRY_S:
                log.warning("agent lookup has no responder", extra={"agent_id": agent_id})
                return None
            await asyncio.sleep(_NO_RESPONDER_RETRY_S)
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
