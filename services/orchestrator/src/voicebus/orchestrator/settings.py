"""Orchestrator settings (env prefix ``VB_ORCHESTRATOR_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from voicebus.orchestrator.conversation import ConversationSettings
from voicebus.orchestrator.secret_box import fernet_keys
from voicebus.orchestrator.turn import TurnLimits
from voicebus.runtime.settings import ServiceSettings


class OrchestratorSettings(ServiceSettings):
    """Settings of the orchestrator service."""

    model_config = SettingsConfigDict(env_prefix="VB_ORCHESTRATOR_")
    service_name: ClassVar[str] = "orchestrator"
    answers_tenants: ClassVar[bool] = True
    default_http_port: ClassVar[int] = 8082

    agents_dir: Path = Field(
        default=Path("agents"), description="Agent files <agent_id>.yaml (relative: to the cwd)."
    )
    llm_timeout_s: float = Field(default=30.0, gt=0, description="Longest one LLM round.")
    tool_timeout_s: float = Field(default=10.0, gt=0, description="Longest one tool call.")
    max_rounds: int = Field(
        default=3, ge=1, le=10, description="LLM rounds per turn; the last is offered no tools."
    )
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
    secrets_key: SecretStr = Field(
        default=SecretStr("dev-secret"),
        description=(
            "Fernet key(s) that encrypt webhook tools' secrets at rest, comma-separated; the "
            "first encrypts, all decrypt (rotation). Placeholders are refused in production."
        ),
    )
    tools_allow_loopback: bool = Field(
        default=False, description="Let webhook and MCP tools reach loopback addresses."
    )
    tools_allow_private_networks: bool = Field(
        default=False, description="Let webhook and MCP tools reach private (RFC 1918) addresses."
    )
    slow_tool_s: float = Field(
        default=0.7, ge=0, description="A tool slower than this gets a filler line first."
    )
    slow_tool_line: str = Field(
        default="One moment while I check that.", description="The filler line of a slow tool."
    )

    analysis_timeout_s: float = Field(
        default=45.0,
        gt=0,
        le=55,  # two requests (the repair) must end inside the consumer's 120 s ack wait
        description="Longest one post-call analysis LLM request.",
    )
    analysis_attempts: int = Field(
        default=5, ge=1, le=20,
        description="Deliveries of an ended call whose LLM fails before call.analyzed says so.",
    )  # fmt: skip

    @field_validator("secrets_key")
    @classmethod
    def _check_secrets_key(cls, value: SecretStr) -> SecretStr:
        fernet_keys(value.get_secret_value())  # raises naming the variable, not the value
        return value

    def conversation(self) -> ConversationSettings:
        """The conversation tunables these settings give."""
        return ConversationSettings(
            limits=TurnLimits(
                llm_timeout_s=self.llm_timeout_s,
                max_rounds=self.max_rounds,
                slow_tool_s=self.slow_tool_s,
                slow_tool_line=self.slow_tool_line,
                clause_chars=self.chunk_clause_chars,
                max_chars=max(self.chunk_max_chars, self.chunk_clause_chars),
            ),
            max_history_messages=self.max_history_messages,
            tool_timeout_s=self.tool_timeout_s,
            hangup_wait_max_s=self.hangup_wait_max_s,
        )
