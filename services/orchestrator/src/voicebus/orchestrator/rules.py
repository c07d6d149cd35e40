"""What a tenant's own agent may not do that an operator's template may. Pure.

A template comes from the operator's agent files; a tenant's agent comes from
the tenant's API key. A tenant's agent must not reach into the orchestrator's
host: no files (``data`` tools), no commands (stdio MCP servers), no
environment (``${VAR}`` in engine options, ``api_key_env``: that would send the
operator's key to a server the tenant names). Engine names must be registered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from voicebus.contracts.agents import AgentDefinition, DataTool, McpTransport, Problem
from voicebus.engines.base import LLM, EngineError
from voicebus.engines.validation import validate_choice, validation_context

_ENV_REFERENCE: Final = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")
_REFUSED_OPTIONS: Final = ("api_key_env", "api_key")


def tenant_problems(definition: AgentDefinition) -> list[Problem]:
    """Why a tenant may not save this definition as its own agent (empty: it may)."""
    problems = []
    for i, tool in enumerate(definition.tools):
        if isinstance(tool, DataTool):
            problems.append(Problem(f"tools[{i}]", "data tools read the operator's files: "
                                    "templates only; use a webhook tool"))  # fmt: skip
    for i, server in enumerate(definition.mcp_servers):
        if server.transport is McpTransport.STDIO:
            why = "stdio runs a command on the platform: templates only"
            problems.append(Problem(f"mcp_servers[{i}].transport", why))
    choices = [(role, getattr(definition, role)) for role in ("llm", "stt", "tts")]
    choices += [
        (f"{role}.fallback[{i}]", fallback)
        for role in ("llm", "stt", "tts")
        for i, fallback in enumerate(getattr(definition, role).fallback)
    ]
    for role, choice in choices:
        options = choice.options
        for key in _REFUSED_OPTIONS:
            if key in options:
                why = ("keys in a definition are templates only (it would be stored and shown "
                       "in clear; per-tenant keys come with the credential store)")  # fmt: skip
                problems.append(Problem(f"{role}.options.{key}", why))
        for path in _env_references(options, f"{role}.options"):
            problems.append(
                Problem(path, "${VAR} reads the platform's environment: templates only")
            )
    for i, node in enumerate(definition.flow.nodes if definition.flow else []):
        where = f"flow.nodes[{i}].llm_options"
        for key in _REFUSED_OPTIONS:
            if key in (node.llm_options or {}):
                problems.append(
                    Problem(f"{where}.{key}", "keys in a definition are templates only")
                )
        for path in _env_references(node.llm_options or {}, where):
            problems.append(
                Problem(path, "${VAR} reads the platform's environment: templates only")
            )
    return problems


def _env_references(value: Any, path: str) -> Iterable[str]:
    if isinstance(value, str):
        if _ENV_REFERENCE.search(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _env_references(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _env_references(item, f"{path}[{i}]")


def speech_problems(definition: AgentDefinition) -> list[Problem]:
    """STT and TTS choices (and their fallbacks) that are unknown or refuse their options.

    Options that read the environment (``${VAR}``) are checked when the template
    is compiled instead.
    """
    problems = []
    for role in ("stt", "tts"):
        choice = getattr(definition, role)
        entries = [(role, choice.engine, choice.options)] + [
            (f"{role}.fallback[{i}]", f.engine, f.options) for i, f in enumerate(choice.fallback)
        ]
        for field, name, options in entries:
            if _ENV_REFERENCE.search(str(options)):
                continue
            problem = validate_choice(role, name, options, field=field)
            if problem is not None:
                problems.append(Problem(problem.field, problem.message))
    return problems


async def engine_problems(definition: AgentDefinition) -> list[Problem]:
    """Engines that are not registered (STT, TTS) or refuse their options (LLM)."""
    problems = speech_problems(definition)
    for i, fallback in enumerate(definition.llm.fallback):
        if fallback.engine not in LLM.names():
            problems.append(Problem(f"llm.fallback[{i}].engine",
                                    f"no llm engine {fallback.engine!r}"))  # fmt: skip
    if definition.llm.engine not in LLM.names():
        known = ", ".join(LLM.names())
        problems.append(Problem("llm.engine", f"no llm engine {definition.llm.engine!r}; "
                                f"known: {known}"))  # fmt: skip
    elif not any(_ENV_REFERENCE.search(str(v)) for v in definition.llm.options.values()):
        try:  # options with ${VAR} are checked when the template is compiled
            engine = LLM.create(definition.llm.engine, definition.llm.options, validation_context())
        except EngineError as exc:
            problems.append(Problem("llm.options", str(exc)))
        else:
            await _close(engine)
        for i, node in enumerate(definition.flow.nodes if definition.flow else []):
            if not node.llm_options or _ENV_REFERENCE.search(str(node.llm_options)):
                continue
            options = {**definition.llm.options, **node.llm_options}
            try:
                await _close(LLM.create(definition.llm.engine, options, validation_context()))
            except EngineError as exc:
                problems.append(Problem(f"flow.nodes[{i}].llm_options", str(exc)))
        analysis = definition.analysis
        if analysis and analysis.llm_options and not _ENV_REFERENCE.search(str(analysis)):
            options = {**definition.llm.options, **analysis.llm_options}
            try:
                await _close(LLM.create(definition.llm.engine, options, validation_context()))
            except EngineError as exc:
                problems.append(Problem("analysis.llm_options", str(exc)))
    return problems


async def _close(engine: object) -> None:
    close = getattr(engine, "aclose", None)
    if close is not None:
        await close()
