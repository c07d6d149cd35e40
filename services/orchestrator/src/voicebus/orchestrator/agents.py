"""Agents: YAML files ``<agents dir>/<agent_id>.yaml``, validated and cached.

A file names the agent, its prompt, greeting and goodbye (``{{variable}}``
templates over the call context), its engines per role, turn-taking and tools::

    name: Order status assistant
    system_prompt: You help {{customer_name}} with Acme orders.
    greeting: Hi {{customer_name}}, this is Acme support. How can I help?
    defaults: {customer_name: there}
    llm: {engine: scripted, options: {...}}
    stt: {engine: whisper-local}
    tts: {engine: hibari, options: {voice: heart}}
    turn: {vad_stop_ms: 300, allow_interruptions: true}
    tools: [{type: end_call}, {type: data, name: check_order_status, file: data/orders.json}]

Templates: every ``{{name}}`` a template uses must have an entry in
``defaults`` (its value may be empty), or loading fails naming the file and
field. A call's context overrides the defaults, so rendering never fails and a
misspelt variable is caught at load, not heard on a call.

Engine options may use ``${VAR}`` / ``${VAR:-default}``, expanded at load
from the environment given. ``llm.show_fixed_lines: false`` keeps the lines
the LLM did not write (greeting, tools' spoken replies, goodbye) out of its
prompt, for small local models that copy them or stop calling tools.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from voicebus.contracts.rpc import (
    AgentProfile,
    EngineChoice,
    FallbackSettings,
    ScalarOption,
    TurnSettings,
)
from voicebus.engines.builtin import load_builtin_engines
from voicebus.engines.validation import validate_choice
from voicebus.orchestrator.errors import AgentConfigError, TemplateError
from voicebus.orchestrator.templating import expand_env, render, variables
from voicebus.orchestrator.tools import Tool, ToolConfig

log = logging.getLogger(__name__)

AGENT_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
SUFFIXES: Final = (".yaml", ".yml")
_TEMPLATES: Final = ("system_prompt", "greeting", "goodbye", "fallback_reply")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LLMFallback(_Strict):
    """A language model tried when the ones before it fail."""

    engine: str = Field(min_length=1, max_length=64)
    options: dict[str, Any] = Field(default_factory=dict)


class LLMChoice(_Strict):
    """The agent's language model; options may be structured (rules, lists)."""

    engine: str = Field(min_length=1, max_length=64)
    options: dict[str, Any] = Field(default_factory=dict)
    fallback: list[LLMFallback] = Field(
        default_factory=list, max_length=4, description="Models tried in order when it fails."
    )
    show_fixed_lines: bool = Field(
        default=True,
        description=(
            "Show the LLM the lines it did not write (greeting, tools' spoken replies, "
            "goodbye) as assistant messages. Small local models stop calling tools after "
            "such a line, or copy it with other facts: false for them."
        ),
    )


class FallbackEngine(_Strict):
    """An engine tried when the ones before it in the role's list fail."""

    engine: str = Field(min_length=1, max_length=64)
    options: dict[str, ScalarOption] = Field(default_factory=dict)


class SpeechChoice(_Strict):
    """An STT or TTS engine; options are scalars (they travel in ``AgentProfile``)."""

    engine: str = Field(min_length=1, max_length=64)
    options: dict[str, ScalarOption] = Field(default_factory=dict)
    fallback: list[FallbackEngine] = Field(
        default_factory=list, max_length=4, description="Engines tried in order when it fails."
    )

    @field_validator("options", mode="before")
    @classmethod
    def _scalars(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(item, str | int | float | bool):
                    raise ValueError(f"{key!r} must be a string, number or boolean")
        return value


class TurnConfig(TurnSettings):
    """``TurnSettings`` as written in an agent file: unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class FailoverConfig(FallbackSettings):
    """``FallbackSettings`` as written in an agent file: unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AgentFile(_Strict):
    """The schema of one agent file."""

    name: str = Field(min_length=1, max_length=256)
    language: str = Field(default="en", max_length=16)
    # Before the templates: their validators check their variables against it.
    defaults: dict[str, str] = Field(default_factory=dict)
    system_prompt: str = Field(min_length=1)
    greeting: str = Field(default="", description="Spoken first; empty: wait for the caller.")
    goodbye: str = Field(default="Goodbye!", description="Spoken by end_call before hanging up.")
    fallback_reply: str = Field(
        default="Sorry, I had a problem there. Could you say that again?",
        description="Spoken when the LLM fails.",
    )
    llm: LLMChoice
    stt: SpeechChoice = SpeechChoice(engine="whisper-local")
    tts: SpeechChoice = SpeechChoice(engine="hibari")
    turn: TurnConfig = Field(default_factory=TurnConfig)
    failover: FailoverConfig = Field(default_factory=FailoverConfig)
    tools: list[ToolConfig] = Field(default_factory=list)
    tenants: list[str] | None = Field(
        default=None,
        description="Tenants whose calls may use this agent; unset: every tenant.",
    )

    @field_validator(*_TEMPLATES)
    @classmethod
    def _variables_have_defaults(cls, value: str, info: ValidationInfo) -> str:
        missing = sorted(variables(value) - set(info.data.get("defaults", {})))
        if missing:
            raise ValueError(
                f"uses {{{{{', '.join(missing)}}}}} with no entry in defaults "
                "(add it to defaults, possibly as an empty string)"
            )
        return value

    @field_validator("tools")
    @classmethod
    def _unique_names(cls, value: list[ToolConfig]) -> list[ToolConfig]:
        names = [tool.name for tool in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate tool name(s) {', '.join(duplicates)}")
        return value


@dataclass(frozen=True, slots=True)
class Agent:
    """A loaded agent: its file's settings plus its built tools."""

    id: str
    path: Path
    spec: AgentFile
    tools: tuple[Tool, ...]

    @property
    def profile(self) -> AgentProfile:
        """What media and the gateway need to know (the ``AGENTS_GET`` reply)."""
        spec = self.spec
        return AgentProfile(
            agent_id=self.id,
            name=spec.name,
            language=spec.language,
            stt=EngineChoice(engine=spec.stt.engine, options=dict(spec.stt.options)),
            tts=EngineChoice(engine=spec.tts.engine, options=dict(spec.tts.options)),
            turn=TurnSettings.model_validate(spec.turn.model_dump()),
            stt_fallbacks=[
                EngineChoice(engine=f.engine, options=dict(f.options)) for f in spec.stt.fallback
            ],
            tts_fallbacks=[
                EngineChoice(engine=f.engine, options=dict(f.options)) for f in spec.tts.fallback
            ],
            fallback=FallbackSettings.model_validate(spec.failover.model_dump()),
        )

    def serves(self, tenant_id: str) -> bool:
        """Whether ``tenant_id``'s calls may use this agent (another tenant sees no agent)."""
        return self.spec.tenants is None or tenant_id in self.spec.tenants

    def variables(self, context: Mapping[str, str]) -> dict[str, str]:
        """Template values for one call: the defaults, overridden by the call context."""
        return {**self.spec.defaults, **context}

    def render(self, field: str, context: Mapping[str, str]) -> str:
        """One of the agent's templates filled for a call (``greeting``, ``system_prompt``...)."""
        if field not in _TEMPLATES:
            raise TemplateError(f"{field!r} is not a template field")
        return render(getattr(self.spec, field), self.variables(context))


def _field(loc: tuple[int | str, ...]) -> str:
    # A discriminated union adds its tag after the list index (tools.0.data.file): drop it.
    parts = [
        str(part)
        for i, part in enumerate(loc)
        if not (i > 0 and isinstance(loc[i - 1], int) and part in ("end_call", "data"))
    ]
    return ".".join(parts) or "(file)"


def _problems(exc: ValidationError) -> tuple[str, str]:
    """(first field, "field: problem; field: problem") of a validation error."""
    errors = exc.errors()
    text = "; ".join(
        f"{_field(err['loc'])}: {err['msg'].removeprefix('Value error, ')}" for err in errors
    )
    return _field(errors[0]["loc"]), text


def load_agent(path: Path, environ: Mapping[str, str]) -> Agent:
    """Load and validate one agent file.

    Args:
        path: ``<agents dir>/<agent_id>.yaml``.
        environ: environment for ``${VAR}`` in engine options.

    Raises:
        AgentConfigError: naming the file and the field at fault.
    """
    agent_id = path.stem
    if not AGENT_ID.fullmatch(agent_id):
        raise AgentConfigError(path, "file name must be <agent_id>.yaml with [A-Za-z0-9_-]")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError(path, f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise AgentConfigError(path, f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise AgentConfigError(path, "must be a YAML mapping")
    for role in ("llm", "stt", "tts"):
        section = raw.get(role)
        if not isinstance(section, dict):
            continue
        entries = [(section, f"{role}.options")]
        fallbacks = section.get("fallback")
        if isinstance(fallbacks, list):
            entries += [
                (item, f"{role}.fallback.{i}.options")
                for i, item in enumerate(fallbacks)
                if isinstance(item, dict)
            ]
        for entry, where in entries:
            if "options" not in entry:
                continue
            try:
                entry["options"] = expand_env(entry["options"], environ, where)
            except TemplateError as exc:
                field, _, problem = str(exc).partition(": ")
                raise AgentConfigError(path, problem, field) from None
    try:
        spec = AgentFile.model_validate(raw)
    except ValidationError as exc:
        field, problems = _problems(exc)
        raise AgentConfigError(path, problems, field, named=True) from None
    check_engines(path, spec)
    tools = tuple(
        config.build(path.parent, f"tools.{i}", path) for i, config in enumerate(spec.tools)
    )
    return Agent(id=agent_id, path=path, spec=spec, tools=tools)


def check_engines(path: Path, spec: AgentFile) -> None:
    """Every STT and TTS engine of the agent (and its fallbacks) exists and takes its options.

    Raises:
        AgentConfigError: naming the field (``tts.options.voice``, ``stt.fallback.0.engine``).
    """
    load_builtin_engines()
    for role, choice in (("stt", spec.stt), ("tts", spec.tts)):
        entries = [(role, choice.engine, choice.options)] + [
            (f"{role}.fallback.{i}", f.engine, f.options) for i, f in enumerate(choice.fallback)
        ]
        for field, engine, options in entries:
            problem = validate_choice(role, engine, options, field=field)
            if problem is not None:
                raise AgentConfigError(path, problem.message, problem.field)


class AgentCatalog:
    """Every agent of a directory, loaded once and cached.

    Args:
        agents: the loaded agents by id.
    """

    def __init__(self, agents: Mapping[str, Agent] | None = None) -> None:
        self._agents = dict(agents or {})

    @classmethod
    def load(cls, directory: Path, environ: Mapping[str, str]) -> AgentCatalog:
        """Load ``directory/*.yaml``; a missing directory gives an empty catalog.

        Raises:
            AgentConfigError: a file is invalid (the first one found, by name).
        """
        if not directory.is_dir():
            log.warning("agents directory not found", extra={"path": str(directory)})
            return cls()
        agents: dict[str, Agent] = {}
        for path in sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES):
            agent = load_agent(path, environ)
            if agent.id in agents:
                raise AgentConfigError(path, f"agent {agent.id!r} is defined twice")
            agents[agent.id] = agent
        log.info("agents loaded", extra={"count": len(agents), "path": str(directory)})
        return cls(agents)

    def get(self, agent_id: str) -> Agent | None:
        """The agent, or None."""
        return self._agents.get(agent_id)

    def ids(self) -> list[str]:
        """Loaded agent ids."""
        return sorted(self._agents)
