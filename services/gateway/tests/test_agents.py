"""What an agent lookup reply means for an inbound call (pure)."""

from __future__ import annotations

import pytest

from voicebus.contracts.events import ErrorCode
from voicebus.contracts.rpc import AgentProfile, AgentReply, EngineChoice, RpcError
from voicebus.gateway.agents import judge

pytestmark = pytest.mark.unit

PROFILE = AgentProfile(agent_id="demo", name="Demo", stt=EngineChoice(engine="whisper-local"),
                       tts=EngineChoice(engine="hibari"))  # fmt: skip


def test_a_found_agent_is_accepted() -> None:
    assert judge(AgentReply(ok=True, agent=PROFILE), "demo") is None


def test_no_answer_is_a_retryable_internal_error() -> None:
    refusal = judge(None, "demo")
    assert refusal is not None
    assert (refusal.code, refusal.retryable) == (ErrorCode.INTERNAL, True)


@pytest.mark.parametrize(
    "reply",
    [
        AgentReply(ok=False, error=RpcError(status=404, code="agent_not_found", message="no")),
        AgentReply(ok=False),
        AgentReply(ok=True),  # ok without an agent is not an agent
    ],
)
def test_unknown_agents(reply: AgentReply) -> None:
    refusal = judge(reply, "demo2")
    assert refusal is not None
    assert refusal.code is ErrorCode.UNKNOWN_AGENT
    assert "demo2" in refusal.message
    assert not refusal.retryable


def test_other_failures_say_what_the_owner_answered() -> None:
    reply = AgentReply(ok=False, error=RpcError(status=503, code="loading", message="wait"))
    refusal = judge(reply, "demo")
    assert refusal is not None
    assert refusal.code is ErrorCode.INTERNAL
    assert "loading" in refusal.message
    assert refusal.retryable
