"""An agent as its owner writes it: prompt, lines, engines, turn-taking, tools, variables, flow.

The same model is what ``agents/*.yaml`` files hold, what ``POST /api/v1/agents``
takes and what the orchestrator stores (one immutable version per save).
Structure is checked here (pydantic); the rules that span fields (flow graph,
template variables, tool names) are checked by :mod:`.validation`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from voicebus.contracts.agents.analysis import MEMORY_VARIABLES, AnalysisSettings, MemorySettings
from voicebus.contracts.agents.flow import Flow, Scalar, VariableName
from voicebus.contracts.agents.knowledge import KnowledgeSettings
from voicebus.contracts.agents.tools import AgentTool, Definition, ToolName
from voicebus.contracts.redaction import RedactionSettings
from voicebus.contracts.rpc import EngineChoice, FallbackSettings, TurnSettings


class VariableType(StrEnum):
    """Type of a call-context variable (the context itself is strings; the type is checked)."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


class VariableSpec(Definition):
    """A call-context variable the agent uses."""

    name: VariableName
    type: VariableType = Field(default=VariableType.STRING, description="Expected type.")
    required: bool = Field(default=False, description="A call without it is refused.")
    default: Scalar | None = Field(default=None, description="Value when the call has none.")
    description: str = Field(default="", max_length=512, description="What it is.")

    @model_validator(mode="after")
    def _default_fits(self) -> VariableSpec:
        if self.required and self.default is not None:
            raise ValueError("a required variable has no default")
        if self.default is not None and not value_fits(str(self.default), self.type):
            raise ValueError(f"default is not a {self.type.value}")
        return self


def value_fits(value: str, kind: VariableType) -> bool:
    """Whether the context string ``value`` is a ``kind``."""
    match kind:
        case VariableType.INTEGER:
            return value.strip().lstrip("+-").isdigit()
        case VariableType.NUMBER:
            try:
                float(value)
            except ValueError:
                return False
            return True
        case VariableType.BOOLEAN:
            return value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}
        case _:
            return True


class FallbackEngine(EngineChoice):
    """An STT or TTS engine tried when the ones before it in the role's list fail."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SpeechChoice(EngineChoice):
    """An STT or TTS engine as written in a definition: unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fallback: list[FallbackEngine] = Field(
        default_factory=list, max_length=4, description="Engines tried in order when it fails."
    )


class FailoverConfig(FallbackSettings):
    """Failover budgets as written in a definition: unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TurnConfig(TurnSettings):
    """Turn-taking as written in a definition: unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class LLMFallback(Definition):
    """A language model tried when the ones before it fail."""

    engine: str = Field(min_length=1, max_length=64, description="Registered LLM engine.",
                        examples=["anthropic"])  # fmt: skip
    options: dict[str, Any] = Field(default_factory=dict, description="Engine options.")


class LLMSettings(Definition):
    """The agent's language model; options may be structured (the scripted engine's rules)."""

    engine: str = Field(min_length=1, max_length=64, description="Registered LLM engine.",
                        examples=["openai"])  # fmt: skip
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Engine options (model, temperature, max_tokens, base_url...).",
        examples=[{"model": "gpt-4o-mini", "temperature": 0.2}],
    )
    show_fixed_lines: bool = Field(
        default=True,
        description=(
            "Show the LLM the lines it did not write (greeting, tools' spoken replies, "
            "goodbye). Small local models copy them or stop calling tools: false for them."
        ),
    )
    fallback: list[LLMFallback] = Field(
        default_factory=list, max_length=4, description="Models tried in order when it fails."
    )


class McpTransport(StrEnum):
    """How the orchestrator reaches an MCP server."""

    STREAMABLE_HTTP = "streamable_http"
    SSE = "sse"
    STDIO = "stdio"


class McpServer(Definition):
    """An MCP server whose tools the agent may call (discovered when a call starts).

    ``stdio`` runs a command on the orchestrator's host: only agents the operator
    imports (templates) may use it.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Server name.",
                      examples=["crm"])  # fmt: skip
    transport: McpTransport = Field(description="streamable_http, sse or stdio.")
    url: str | None = Field(
        default=None, max_length=2048, pattern=r"^https?://[^\s]+$",
        description="Server URL (HTTP transports).",
    )  # fmt: skip
    command: str | None = Field(default=None, max_length=512, description="stdio: program.")
    args: list[str] = Field(default_factory=list, max_length=32, description="stdio: arguments.")
    tools: list[ToolName] | None = Field(
        default=None, description="Only these of its tools; every tool when unset."
    )
    timeout_s: float = Field(default=10.0, ge=0.5, le=60.0, description="Longest one call.")

    @model_validator(mode="after")
    def _where(self) -> McpServer:
        if self.transport is McpTransport.STDIO:
            if not self.command or self.url:
                raise ValueError("a stdio server has a command and no url")
        elif not self.url or self.command or self.args:
            raise ValueError(f"a {self.transport.value} server has a url and no command")
        return self


class Hygiene(Definition):
    """Caller silence and call length: reprompt, hang up politely, close at a limit."""

    idle_timeout_s: float | None = Field(
        default=None, ge=2.0, le=600.0,
        description="Caller silence (after the agent finished) that prompts a reprompt; off unset.",
    )  # fmt: skip
    idle_reprompt: str = Field(default="Are you still there?", max_length=512)
    idle_max_reprompts: int = Field(
        default=2, ge=0, le=10, description="Reprompts before hanging up."
    )
    idle_goodbye: str = Field(
        default="It seems we got disconnected. Goodbye!", max_length=512,
        description="Said before an idle hang-up.",
    )  # fmt: skip
    max_duration_s: float | None = Field(
        default=None, ge=10.0, le=4 * 3600.0, description="Longest call; unlimited unset."
    )
    max_duration_line: str = Field(
        default="We have reached the time limit for this call. Thank you, goodbye!",
        max_length=512,
        description="Said when the limit is reached, before hanging up.",
    )


class AgentDefinition(Definition):
    """Everything that makes an agent, as written (YAML or JSON)."""

    name: str = Field(min_length=1, max_length=256, description="Display name.",
                      examples=["Acme order status assistant"])  # fmt: skip
    description: str = Field(default="", max_length=2048, description="For people.")
    language: str = Field(default="en", max_length=16, description="BCP 47 language.")
    variables: list[VariableSpec] = Field(
        default_factory=list, max_length=64, description="Call-context variables used."
    )
    defaults: dict[VariableName, str] = Field(
        default_factory=dict, description="Shorthand: optional string variables and defaults."
    )
    system_prompt: str = Field(min_length=1, description="The LLM's instructions ({{vars}}).")
    greeting: str = Field(default="", description="Said first; empty: wait for the caller.")
    goodbye: str = Field(default="Goodbye!", description="Said by end_call before hanging up.")
    fallback_reply: str = Field(
        default="Sorry, I had a problem there. Could you say that again?",
        description="Said when the LLM fails.",
    )
    llm: LLMSettings = Field(description="The language model.")
    stt: SpeechChoice = Field(default=SpeechChoice(engine="whisper-local"),
                              description="Speech to text.")  # fmt: skip
    tts: SpeechChoice = Field(default=SpeechChoice(engine="hibari"),
                              description="Text to speech.")  # fmt: skip
    turn: TurnConfig = Field(default_factory=TurnConfig, description="Turn-taking.")
    failover: FailoverConfig = Field(
        default_factory=FailoverConfig, description="When work moves to a fallback engine."
    )
    tools: list[AgentTool] = Field(default_factory=list, max_length=64)
    mcp_servers: list[McpServer] = Field(default_factory=list, max_length=8)
    flow: Flow | None = Field(default=None, description="A multi-step flow; none: free talk.")
    hygiene: Hygiene = Field(default_factory=Hygiene, description="Silence and call length.")
    redaction: RedactionSettings = Field(
        default_factory=RedactionSettings,
        description="Personal data taken out of transcripts and replies before they are "
        "published or stored (cards, SSNs, e-mails, digit runs, own patterns).",
    )
    analysis: AnalysisSettings | None = Field(
        default=None, description="Post-call analysis (call.analyzed); none: not analysed."
    )
    memory: MemorySettings = Field(
        default_factory=MemorySettings, description="Caller memory (opt-in)."
    )
    knowledge: KnowledgeSettings | None = Field(
        default=None,
        description="Knowledge bases the agent answers from (tool or automatic context); "
        "none: no knowledge base.",
    )
    tenants: list[str] | None = Field(
        default=None,
        description="Agent files only: import for these tenants; unset: a shared template.",
    )

    def tool_names(self) -> list[ToolName]:
        """Names of the agent's own tools, in order."""
        return [tool.name for tool in self.tools]

    def variable_names(self) -> set[str]:
        """Template variables: ``variables``, ``defaults`` and, with memory, the caller's."""
        names = {v.name for v in self.variables} | set(self.defaults)
        return names | MEMORY_VARIABLES if self.memory.enabled else names

    def analysis_settings(self) -> AnalysisSettings | None:
        """What to analyse after a call: ``analysis``, or a summary alone for caller memory."""
        if self.analysis is None and self.memory.enabled:
            return AnalysisSettings()
        return self.analysis

    def kind(self) -> Literal["flow", "free"]:
        """Whether the agent follows a flow."""
        return "flow" if self.flow is not None else "free"
