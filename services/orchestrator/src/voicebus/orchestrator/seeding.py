"""The operator's agent and tool files become stored ones when the orchestrator starts.

A file without ``tenants`` is imported as a shared template; one with
``tenants: [acme, ...]`` as each listed tenant's own agent. Importing is
idempotent (an unchanged file makes no new version), so every instance of a
cluster may do it at every start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from voicebus.orchestrator.agents import read_agent_file
from voicebus.orchestrator.errors import AgentConfigError, TemplateError
from voicebus.orchestrator.library import AgentLibrary, ToolLibrary
from voicebus.orchestrator.templating import expand_env
from voicebus.runtime.rpc import RpcFault

log = logging.getLogger(__name__)

SUFFIXES: Final = (".yaml", ".yml")


def agent_paths(directory: Path) -> list[Path] | None:
    """The agent files of ``directory`` by name (None: no such directory)."""
    if not directory.is_dir():
        return None
    return sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES)


async def import_tools(library: ToolLibrary, directory: Path, environ: Mapping[str, str]) -> int:
    """Import ``directory/*.yaml`` webhook tools, each for its file's ``tenant``.

    A tool file is the operator's: ``${VAR}`` / ``${VAR:-default}`` in it are expanded
    from the environment (how a secret reaches it without being written in git).

    Raises:
        AgentConfigError: a file is unusable (naming the file and its fields).
    """
    paths = agent_paths(directory)
    for path in paths or []:
        _, raw = read_agent_file(path)
        try:
            expanded = expand_env(raw, environ)
        except TemplateError as exc:
            raise AgentConfigError(path, str(exc), named=True) from None
        tenant = expanded.pop("tenant", "default")
        try:
            await library.import_(str(tenant), expanded)
        except RpcFault as exc:
            raise AgentConfigError(path, exc.message, named=True) from None
    return len(paths or [])


async def import_agents(library: AgentLibrary, directory: Path) -> int:
    """Import every agent file of ``directory``; returns how many agents it holds.

    Raises:
        AgentConfigError: a file is unusable (naming the file and its fields).
    """
    paths = agent_paths(directory)
    if paths is None:
        log.warning("agents directory not found", extra={"path": str(directory)})
        return 0
    count = 0
    for path in paths:
        agent_id, raw = read_agent_file(path)
        tenants = raw.get("tenants")
        owners: list[str | None] = list(tenants) if isinstance(tenants, list) else [None]
        for tenant in owners:
            try:
                await library.import_(tenant or "default", agent_id, raw,
                                      template=tenant is None, notify=False)  # fmt: skip
            except RpcFault as exc:
                raise AgentConfigError(path, exc.message, named=True) from None
            count += 1
    log.info("agents imported", extra={"count": count, "path": str(directory)})
    return count
