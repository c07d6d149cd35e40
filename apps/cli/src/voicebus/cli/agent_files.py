"""Agent files (``agents/<agent_id>.yaml``): read, check, write. Pure apart from the files."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from voicebus.contracts.agents import AgentDefinition, DefinitionError, Problem, parse_definition

AGENT_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
SUFFIXES: Final = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class AgentFile:
    """One file read: its agent id, its raw mapping and, when sound, its definition."""

    path: Path
    agent_id: str
    raw: dict[str, Any]
    definition: AgentDefinition | None
    problems: tuple[Problem, ...] = ()


def agent_files(paths: Iterable[Path]) -> list[Path]:
    """The agent files named, a directory standing for its ``*.yaml`` files (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
        else:
            found.append(path)
    return found


def read_agent(path: Path) -> AgentFile:
    """Read and check one file; problems name the field (or the file itself)."""
    agent_id = path.stem
    if not AGENT_ID.fullmatch(agent_id):
        problem = Problem("", "file name must be <agent_id>.yaml with [A-Za-z0-9_-]")
        return AgentFile(path, agent_id, {}, None, (problem,))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return AgentFile(path, agent_id, {}, None, (Problem("", f"cannot read: {exc.strerror}"),))
    except yaml.YAMLError as exc:
        return AgentFile(path, agent_id, {}, None, (Problem("", f"not valid YAML: {exc}"),))
    if not isinstance(raw, dict):
        return AgentFile(path, agent_id, {}, None, (Problem("", "must be a YAML mapping"),))
    try:
        definition = parse_definition(raw)
    except DefinitionError as exc:
        return AgentFile(path, agent_id, raw, None, tuple(exc.problems))
    return AgentFile(path, agent_id, raw, definition)


def dump_agent(definition: AgentDefinition) -> str:
    """YAML of a definition, without the fields left at their defaults."""
    data = definition.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
