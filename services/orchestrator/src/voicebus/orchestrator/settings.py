"""Orchestrator settings (env prefix ``VB_ORCHESTRATOR_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from voicebus.orchestrator.conversation import ConversationSettings
from voicebus.orchestrator.turn import TurnLimits
from voicebus.runtime.settings import ServiceSettings


class OrchestratorSettings(ServiceSettings):
    """Settings of the orchestrator service."""

    model_config = SettingsConfigDict(env_prefix="VB_ORCHESTRATOR_")
    service_name: ClassVar[str] = "orchestrator"
    default_http_port: ClassVar[int] = 8082

    agents_dir: Path = Field(
        default=Path("agents"), description="Agent files <agent_id>.yaml (relative: to the cwd)."
    )
    llm_timeout_s: float = Field(default=30.0, gt=0, description="Longest one LLM round.")
    tool_timeout_s: float = Field(default=10.0, gt=0, description="Longest one tool call.")
    max_tool_rounds: int = Field(default=4, ge=0, le=20, description="Tool rounds per turn.")
    max_history_messages: int = Field(
        default=60, ge=4, description="History kept after the system prompt."
    )
    chunk_clause_chars: int = Field(
        default=60, ge=10, description="A clause this long is spoken at its next comma."
    )
    chunk_max_chars: int = Field(
        default=240, ge=40, description="A chunk with no break is cut at a space this long."
    )
    hangup_wait_max_s: float = Field(
        default=20.0, ge=0, description="Longest wait for the goodbye to play before hanging up."
    )

    def conversation(self) -> ConversationSettings:
        """The conversation tunables these settings give."""
        return ConversationSettings(
            limits=TurnLimits(
                llm_timeout_s=self.llm_timeout_s,
                max_tool_rounds=self.max_tool_rounds,
                clause_chars=self.chunk_clause_chars,
                max_chars=max(self.chunk_max_chars, self.chunk_clause_chars),
            ),
            max_history_messages=self.max_history_messages,
            tool_timeout_s=self.tool_timeout_s,
            hangup_wait_max_s=self.hangup_wait_max_s,
        )
