"""Agents ready to run: a stored definition compiled once per version.

Compiling a template (the operator's agent) expands ``${VAR}`` /
``${VAR:-default}`` in its engine options from the environment and loads its
``data`` files from the agents folder; a tenant's agent may use neither
(:mod:`.rules` refuses them at save). Webhook and MCP tools are not part of
the compiled agent: they belong to the call's tenant and are resolved when a
call starts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from voicebus.contracts.agents import AgentDefinition, DefinitionError, parse_definition
from voicebus.contracts.agents.validation import context_values
from voicebus.contracts.rpc import AgentProfile, EngineChoice, FallbackSettings, TurnSettings
from voicebus.engines.builtin import load_builtin_engines
from voicebus.orchestrator.errors import AgentConfigError, TemplateError
from voicebus.orchestrator.rules import speech_problems
from voicebus.orchestrator.templating import expand_env, render
from voicebus.orchestrator.tools import Tool, build_tool

log = logging.getLogger(__name__)

_TEMPLATES: Final = ("system_prompt", "greeting", "goodbye", "fallback_reply")


@dataclass(frozen=True, slots=True)
class Agent:
    """One version of an agent, compiled.

    Attributes:
        id: agent id.
        version: the version compiled.
        owner: tenant id, or ``''`` for a shared template.
        spec: the definition (engine options expanded for a template).
        tools: its built-in tools (webhook references are resolved per call).
    """

    id: str
    version: int
    owner: str
    spec: AgentDefinition
    tools: tuple[Tool, ...]

    @property
    def template(self) -> bool:
        """A shared template."""
        return self.owner == ""

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
            version=self.version,
            template=self.template,
            redaction=spec.redaction if spec.redaction.active else None,
        )

    def variables(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """Template values for one call: declared defaults, overridden by the context."""
        return dict(context_values(self.spec, {k: str(v) for k, v in context.items()}))

    def render(self, field: str, context: Mapping[str, Any]) -> str:
        """One of the agent's templates filled for a call (``greeting``, ``system_prompt``...)."""
        if field not in _TEMPLATES:
            raise TemplateError(f"{field!r} is not a template field")
        return render(getattr(self.spec, field), {**self.variables(context), **context})


def compile_agent(
    agent_id: str,
    version: int,
    owner: str,
    definition: AgentDefinition,
    agents_dir: Path,
    environ: Mapping[str, str],
) -> Agent:
    """Build the runnable agent of one stored version.

    Raises:
        AgentConfigError: a template's ``${VAR}`` is unset, or a data file is unusable.
    """
    where = agents_dir / f"{agent_id}.yaml"
    if owner == "":
        changes = {}
        for role in ("llm", "stt", "tts"):
            choice = getattr(definition, role)
            options = _expanded(choice.options, environ, role, where)
            fallbacks = [
                f.model_copy(
                    update={
                        "options": _expanded(f.options, environ, f"{role}.fallback[{i}]", where)
                    }
                )
                for i, f in enumerate(choice.fallback)
            ]
            changes[role] = choice.model_copy(update={"options": options, "fallback": fallbacks})
        definition = definition.model_copy(update=changes)
    tools = []
    for i, config in enumerate(definition.tools):
        tool = build_tool(config, agents_dir, f"tools[{i}]", where)
        if tool is not None:
            tools.append(tool)
    return Agent(id=agent_id, version=version, owner=owner, spec=definition, tools=tuple(tools))


def _expanded(
    options: Mapping[str, Any], environ: Mapping[str, str], where: str, path: Path
) -> dict[str, Any]:
    try:
        return dict(expand_env(dict(options), environ, f"{where}.options"))
    except TemplateError as exc:
        field, _, problem = str(exc).partition(": ")
        raise AgentConfigError(path, problem, field) from None


def read_agent_file(path: Path) -> tuple[str, dict[str, Any]]:
    """(agent id, raw mapping) of an agent file.

    Raises:
        AgentConfigError: the name is not an agent id, or the file is not a YAML mapping.
    """
    agent_id = path.stem
    if not agent_id.replace("-", "").replace("_", "").isalnum() or len(agent_id) > 128:
        raise AgentConfigError(path, "file name must be <agent_id>.yaml with [A-Za-z0-9_-]")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError(path, f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise AgentConfigError(path, f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise AgentConfigError(path, "must be a YAML mapping")
    return agent_id, raw


def load_agent(path: Path, environ: Mapping[str, str]) -> Agent:
    """Read, check and compile one agent file as a template, version 1 (tests, tools).

    Raises:
        AgentConfigError: naming the file and every field at fault.
    """
    agent_id, raw = read_agent_file(path)
    try:
        definition = parse_definition(raw)
    except DefinitionError as exc:
        first = exc.problems[0].path if exc.problems else None
        raise AgentConfigError(path, str(exc), first, named=True) from None
    agent = compile_agent(agent_id, 1, "", definition, path.parent, environ)
    load_builtin_engines()
    problems = speech_problems(agent.spec)
    if problems:
        text = "; ".join(f"{p.path}: {p.message}" for p in problems)
        raise AgentConfigError(path, text, problems[0].path, named=True)
    return agent
