"""Knowledge per turn: the ``search_knowledge`` tool, or chunks added to the turn's prompt.

Either way every chunk reaches the LLM with its id (so a reply can cite it) and each
retrieval is published as ``kb.retrieved`` (chunk ids and scores; the query is personal
data). A store outage costs the turn its knowledge, never the call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, Protocol

from sqlalchemy.exc import SQLAlchemyError

from voicebus.contracts.agents import SEARCH_KNOWLEDGE, KnowledgeMode, KnowledgeSettings
from voicebus.contracts.events import KbRetrieved, KbRetrievedData, RetrievedChunk
from voicebus.engines.base import ToolSpec
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.knowledge import Found, KnowledgeUnavailableError
from voicebus.orchestrator.outbox import Outbox
from voicebus.orchestrator.tools import ToolError

log = logging.getLogger(__name__)

MAX_QUERY: Final = 2048
CONTEXT_INTRO: Final = (
    "Knowledge base excerpts that may answer the caller's last question. Each starts with "
    "its id in brackets; answer from them and cite the id of what you use:"
)


class Searcher(Protocol):
    """What retrieval needs of :class:`~voicebus.orchestrator.knowledge.Knowledge`."""

    async def search(
        self, tenant_id: str, kb_ids: list[str], query: str, top_k: int
    ) -> list[Found]:
        """The best chunks, best first."""
        ...


def cited(found: Found) -> str:
    """One chunk as the LLM reads it in automatic context: ``[id] (heading) text``."""
    heading = f"({found.heading}) " if found.heading else ""
    return f"[{found.chunk_id}] {heading}{found.text}"


def context_message(found: Sequence[Found]) -> str | None:
    """The system message of a turn's automatic context (None: nothing found)."""
    if not found:
        return None
    return "\n".join([CONTEXT_INTRO, *(cited(f) for f in found)])


class Retriever:
    """Searches an agent's knowledge bases for a call and reports each retrieval.

    Args:
        knowledge: the tenants' knowledge bases.
        outbox: where ``kb.retrieved`` goes.
    """

    def __init__(self, knowledge: Searcher, outbox: Outbox) -> None:
        self._knowledge = knowledge
        self._outbox = outbox

    async def retrieve(
        self,
        agent: Agent,
        tenant_id: str,
        call_id: str,
        query: str,
        mode: Literal["tool", "context"],
    ) -> list[Found]:
        """The agent's best chunks for ``query``; published as ``kb.retrieved``.

        Raises:
            KnowledgeUnavailableError: the store cannot be read now.
        """
        settings = agent.spec.knowledge
        if settings is None:
            return []
        query = query.strip()[:MAX_QUERY]
        try:
            found = await self._knowledge.search(tenant_id, list(settings.bases), query,
                                                 settings.top_k)  # fmt: skip
        except SQLAlchemyError as exc:
            log.warning("knowledge unavailable", extra={"call_id": call_id,
                                                        "error": type(exc).__name__})  # fmt: skip
            raise KnowledgeUnavailableError("the knowledge store cannot be read") from None
        chunks = [RetrievedChunk(kb_id=f.kb_id, document_id=f.document_id,
                                 chunk_id=f.chunk_id, score=f.score) for f in found]  # fmt: skip
        data = KbRetrievedData(agent_id=agent.id, mode=mode, knowledge_bases=list(settings.bases),
                               query=query, chunks=chunks)  # fmt: skip
        await self._outbox.publish(
            KbRetrieved(tenant_id=tenant_id, call_id=call_id, source=self._outbox.source,
                        data=data)
        )  # fmt: skip
        return found

    async def context(self, agent: Agent, tenant_id: str, call_id: str, query: str) -> str | None:
        """The system message of automatic context for a caller turn (None: the agent uses
        none, nothing was found, or the store is down)."""
        settings = agent.spec.knowledge
        if settings is None or settings.mode is not KnowledgeMode.CONTEXT or not query.strip():
            return None
        try:
            found = await self.retrieve(agent, tenant_id, call_id, query, "context")
        except KnowledgeUnavailableError:
            return None
        return context_message(found)

    def tool(self, agent: Agent, tenant_id: str, call_id: str) -> SearchKnowledge | None:
        """The ``search_knowledge`` tool of a call (None: the agent is not in tool mode)."""
        settings = agent.spec.knowledge
        if settings is None or settings.mode is not KnowledgeMode.TOOL:
            return None
        return SearchKnowledge(self, agent, settings, tenant_id, call_id)


class SearchKnowledge:
    """``search_knowledge(query)``: the best chunks, each with its id, for the LLM to cite."""

    ends_call = False
    budget_s = 20.0
    """The first search of a process loads the index library (seconds on a busy host)."""

    def __init__(
        self,
        retriever: Retriever,
        agent: Agent,
        settings: KnowledgeSettings,
        tenant_id: str,
        call_id: str,
    ) -> None:
        self._retriever = retriever
        self._agent = agent
        self._tenant_id = tenant_id
        self._call_id = call_id
        parameters = {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look up, in a few words."}
            },
            "required": ["query"],
        }
        self.spec = ToolSpec(SEARCH_KNOWLEDGE, settings.tool_description, parameters)

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """``{"found": bool, "chunks": [{"chunk_id", "heading", "text"}...]}``."""
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("argument 'query' must be some words to look up")
        try:
            found = await self._retriever.retrieve(self._agent, self._tenant_id, self._call_id,
                                                   query, "tool")  # fmt: skip
        except KnowledgeUnavailableError as exc:
            raise ToolError(str(exc)) from None
        chunks = [{"chunk_id": f.chunk_id, "heading": f.heading, "text": f.text} for f in found]
        return {"found": bool(chunks), "chunks": chunks}

    def reply(self, result: Any) -> str | None:
        """None: the LLM answers from the chunks."""
        return None
