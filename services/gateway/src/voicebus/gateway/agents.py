"""Agent lookup: the orchestrator owns agents; the gateway asks before answering a call."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.aio.client import Client

from voicebus.contracts.events import ErrorCode
from voicebus.contracts.rpc import AGENTS_GET, AgentReply, GetAgent
from voicebus.runtime.rpc import RemoteError, RpcClient, RpcFault

log = logging.getLogger(__name__)


async def fetch_agent(
    nc: Client, tenant_id: str, agent_id: str, timeout_s: float
) -> AgentReply | None:
    """Ask the orchestrator for an agent (``vb.rpc.orchestrator.agents.get``).

    Returns:
        The reply (``ok=False`` with the orchestrator's reason when it refused), or
        None when nobody answered in time or the answer was not an ``AgentReply``:
        the lookup is unavailable, which says nothing about the agent.
    """
    request = GetAgent(tenant_id=tenant_id, agent_id=agent_id)
    try:
        return await RpcClient(nc, timeout_s=timeout_s).ask(AGENTS_GET, request, AgentReply)
    except RemoteError as refused:
        return AgentReply(ok=False, error=refused.error)
    except RpcFault as fault:
        log.warning("agent lookup unavailable", extra={"agent_id": agent_id, "why": fault.code})
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
