"""Request/reply bodies on ``vb.rpc.<service>.<resource>.<verb>``.

The owner of the data answers; anyone else asks. A reply is either the
resource or an :class:`RpcError` (``ok`` tells which), so a missing owner, an
unknown id and a bad request are told apart by the caller.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from voicebus.contracts import subjects
from voicebus.contracts.events._base import Data, TenantId

AGENTS_GET: Final = subjects.rpc("orchestrator", "agents", "get")
"""Look an agent up: request :class:`GetAgent`, reply :class:`AgentReply`."""

ScalarOption = str | int | float | bool


class RpcError(Data):
    """Why a request failed."""

    status: int = Field(ge=400, le=599, description="HTTP-like status.", examples=[404])
    code: str = Field(max_length=64, description="Machine-readable code.",
                      examples=["agent_not_found"])  # fmt: skip
    message: str = Field(max_length=1024, description="What went wrong.",
                         examples=["no agent 'demo2' for tenant 'acme'"])  # fmt: skip


class GetAgent(Data):
    """Request body of ``vb.rpc.orchestrator.agents.get``."""

    tenant_id: TenantId
    agent_id: str = Field(min_length=1, max_length=128, description="Agent id.",
                          examples=["demo"])  # fmt: skip


class EngineChoice(Data):
    """An engine for one role, with its options."""

    engine: str = Field(min_length=1, max_length=64, description="Registered engine name.",
                        examples=["whisper-local"])  # fmt: skip
    options: dict[str, ScalarOption] = Field(default_factory=dict,
                                             description="Engine options.",
                                             examples=[{"language": "en"}])  # fmt: skip


class TurnSettings(Data):
    """How media decides the caller's turn ended and whether they may interrupt."""

    vad_stop_ms: int = Field(default=300, ge=100, le=3000,
                             description="Silence that ends a speech segment.",
                             examples=[300])  # fmt: skip
    min_speech_ms: int = Field(default=200, ge=0, le=3000,
                               description="Shorter sounds are not speech.",
                               examples=[200])  # fmt: skip
    smart_turn: bool = Field(default=False,
                             description="Ask the turn model whether the caller finished.",
                             examples=[False])  # fmt: skip
    allow_interruptions: bool = Field(default=True,
                                      description="Caller speech may cut the agent (barge-in).",
                                      examples=[True])  # fmt: skip


class AgentProfile(Data):
    """What services other than the orchestrator need to know about an agent."""

    agent_id: str = Field(min_length=1, max_length=128, description="Agent id.",
                          examples=["demo"])  # fmt: skip
    name: str = Field(max_length=256, description="Display name.",
                      examples=["Order status assistant"])  # fmt: skip
    language: str = Field(default="en", max_length=16, description="BCP 47 language.",
                          examples=["en"])  # fmt: skip
    stt: EngineChoice = Field(description="Speech-to-text engine.")
    tts: EngineChoice = Field(description="Text-to-speech engine.")
    turn: TurnSettings = Field(default_factory=TurnSettings, description="Turn-taking.")


class AgentReply(Data):
    """Reply of ``vb.rpc.orchestrator.agents.get``."""

    ok: bool = Field(description="True when ``agent`` is set.", examples=[True])
    agent: AgentProfile | None = Field(default=None, description="The agent, when ok.")
    error: RpcError | None = Field(default=None, description="Why not, when not ok.")
