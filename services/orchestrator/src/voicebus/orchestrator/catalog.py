"""Which agent version a call runs, compiled once per version, with its LLM engine.

A new call asks the store for the agent's current version (one indexed read),
so a saved version is used by the very next call on every instance, with no
cache to go stale; a call that is resumed (takeover) asks for the exact version
it started with. Compiled versions are immutable and kept in a bounded cache;
``agent.updated`` evicts the versions it replaced (:meth:`AgentCatalog.forget`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from voicebus.contracts.agents import AgentDefinition
from voicebus.engines.base import LLM, EngineContext, EngineError, LLMEngine
from voicebus.engines.fallback.llm import FallbackLLM
from voicebus.engines.keys import env_names, shared_key_allowed
from voicebus.orchestrator.agents import Agent, compile_agent
from voicebus.orchestrator.engine_events import budgets_of
from voicebus.orchestrator.errors import AgentConfigError
from voicebus.orchestrator.library import AgentLibrary
from voicebus.orchestrator.versions import Stored

log = logging.getLogger(__name__)

_KEEP: Final = 128
Key = tuple[str, str, int]


@runtime_checkable
class _Closable(Protocol):
    async def aclose(self) -> None: ...


class AgentCatalog:
    """Compiled agents and their engines.

    Args:
        library: the agents' store.
        agents_dir: the operator's agents folder (templates' data files).
        environ: expands ``${VAR}`` in templates' engine options.
    """

    def __init__(self, library: AgentLibrary, agents_dir: Path, environ: Mapping[str, str]) -> None:
        self.library = library
        self._dir = agents_dir
        self._environ = environ
        self._compiled: OrderedDict[Key, tuple[Agent, LLMEngine]] = OrderedDict()
        self._nodes: dict[tuple[str, str, int, str], LLMEngine] = {}

    async def current(self, tenant_id: str, agent_id: str) -> tuple[Agent, LLMEngine] | None:
        """The version a new call of this tenant runs (None: unknown or archived).

        Raises:
            AgentConfigError: the version cannot be compiled (a template's setting).
        """
        row = await self.library.resolve(tenant_id, agent_id)
        if row is None or row.archived:
            return None
        return await self._compile(row)

    async def pinned(
        self, tenant_id: str, agent_id: str, version: int | None
    ) -> tuple[Agent, LLMEngine] | None:
        """The version a new call asked for (a replay's), live or not; None: the live one.

        Raises:
            AgentConfigError: the version cannot be compiled.
        """
        if version is None:
            return await self.current(tenant_id, agent_id)
        row = await self.library.resolve(tenant_id, agent_id)
        if row is None or row.archived:
            return None
        return await self.version(row.owner, agent_id, version)

    async def version(
        self, owner: str, agent_id: str, version: int
    ) -> tuple[Agent, LLMEngine] | None:
        """An exact version (a resumed call keeps the one it started with)."""
        key = (owner, agent_id, version)
        if key in self._compiled:
            return self._compiled[key]
        row = await self.library.store.get("agent", owner, agent_id, version)
        return None if row is None else await self._compile(row)

    async def _compile(self, row: Stored) -> tuple[Agent, LLMEngine]:
        key = (row.owner, row.name, row.version)
        found = self._compiled.get(key)
        if found is not None:
            self._compiled.move_to_end(key)
            return found
        definition = AgentDefinition.model_validate(row.body)
        agent = compile_agent(row.name, row.version, row.owner, definition, self._dir,
                              self._environ)  # fmt: skip
        engine = build_llm(agent, self._environ, self._dir / f"{row.name}.yaml")
        self._compiled[key] = (agent, engine)
        while len(self._compiled) > _KEEP:
            # Not closed: a live call may still use it (its client closes when collected).
            self._compiled.popitem(last=False)
        return agent, engine

    def node_engine(self, agent: Agent, node_id: str) -> LLMEngine | None:
        """The LLM of a flow node with its own ``llm_options`` (None: the agent's).

        Raises:
            AgentConfigError: the merged options are refused by the engine.
        """
        flow = agent.spec.flow
        node = next((n for n in flow.nodes if n.id == node_id), None) if flow else None
        if node is None or not node.llm_options:
            return None
        key = (agent.owner, agent.id, agent.version, node_id)
        found = self._nodes.get(key)
        if found is None:
            options = {**agent.spec.llm.options, **node.llm_options}
            try:
                context = _context(agent.spec.llm.engine, options, agent, self._environ)
                found = LLM.create(agent.spec.llm.engine, options, context)
            except EngineError as exc:
                where = self._dir / f"{agent.id}.yaml"
                raise AgentConfigError(where, str(exc), f"flow.{node_id}.llm_options") from None
            self._nodes[key] = found
        return found

    def analysis_engine(self, agent: Agent, engine: LLMEngine) -> LLMEngine:
        """The LLM that analyses the agent's calls: ``engine`` (the agent's own), or one
        with ``analysis.llm_options`` merged over ``llm.options``.

        Raises:
            AgentConfigError: the merged options are refused by the engine.
        """
        settings = agent.spec.analysis_settings()
        if settings is None or not settings.llm_options:
            return engine
        key = (agent.owner, agent.id, agent.version, "\x00analysis")
        found = self._nodes.get(key)
        if found is None:
            options = {**agent.spec.llm.options, **settings.llm_options}
            try:
                context = _context(agent.spec.llm.engine, options, agent, self._environ)
                found = LLM.create(agent.spec.llm.engine, options, context)
            except EngineError as exc:
                where = self._dir / f"{agent.id}.yaml"
                raise AgentConfigError(where, str(exc), "analysis.llm_options") from None
            self._nodes[key] = found
        return found

    async def forget(self, owner: str, agent_id: str, current: int) -> None:
        """Drop compiled versions older than ``current``; live calls keep the objects they hold
        (so their engines are not closed here)."""
        for key in [k for k in self._compiled if k[:2] == (owner, agent_id) and k[2] < current]:
            del self._compiled[key]

    async def close(self) -> None:
        """Close every engine."""
        while self._compiled:
            _, (_, engine) = self._compiled.popitem()
            await _close(engine)
        for engine in self._nodes.values():
            await _close(engine)
        self._nodes.clear()


def build_llm(agent: Agent, environ: Mapping[str, str], where: Path) -> LLMEngine:
    """The agent's LLM; with fallbacks, the models behind one :class:`FallbackLLM`.

    The fallback adapter shares the process's circuit breakers and uses the agent's
    budgets. Vendor keys come from the environment (``VB_ENGINE_KEY_<VENDOR>`` or the
    vendor's own variable) — the operator's keys, used for every tenant's agents.

    Raises:
        AgentConfigError: an engine is unknown or refuses its options.
    """
    llm = agent.spec.llm
    choices = [("llm", llm.engine, llm.options)] + [
        (f"llm.fallback[{i}]", f.engine, f.options) for i, f in enumerate(llm.fallback)
    ]
    engines: list[LLMEngine] = []
    for field, name, options in choices:
        try:
            engines.append(LLM.create(name, options, _context(name, options, agent, environ)))
        except EngineError as exc:
            raise AgentConfigError(where, str(exc), field) from None
    if len(engines) == 1:
        return engines[0]
    return FallbackLLM(engines, budgets=budgets_of(agent.spec.failover))


def _context(
    engine: str, options: Mapping[str, object], agent: Agent, environ: Mapping[str, str]
) -> EngineContext:
    """The engine's key: the operator's shared key only where it cannot leak.

    A tenant's own agent that points its engine at a URL of its choosing gets only
    a key set for that tenant (``VB_ENGINE_KEY_<VENDOR>__<TENANT>``): the operator's
    shared key must never be sent to a host a tenant names.
    """
    names = env_names(agent.owner or "default", engine)
    if not shared_key_allowed(options, template=agent.template):
        names = names[:1]
    key = next((environ[n] for n in names if environ.get(n)), None)
    return EngineContext(api_key=key)


async def _close(engine: LLMEngine) -> None:
    if isinstance(engine, _Closable):
        try:
            await engine.aclose()
        except Exception:  # closing a client must never fail a call or a shutdown
            log.exception("engine close failed", extra={"engine": engine.name})
