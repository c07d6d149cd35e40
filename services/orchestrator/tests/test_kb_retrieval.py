"""Knowledge per turn: automatic context reaches the LLM before the caller's words, the
``search_knowledge`` tool hands the LLM chunks with their ids, and every retrieval is a
``kb.retrieved`` event."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from orchestrator_fakes import Recorder, eventually, make_conversation, of, transcript

from voicebus.contracts.events import AgentReply, KbRetrieved, ToolResult
from voicebus.engines.llm import scripted
from voicebus.orchestrator.agents import Agent, load_agent
from voicebus.orchestrator.conversation import CallServices
from voicebus.orchestrator.kb_chunks import Chunk
from voicebus.orchestrator.kb_index import LexicalIndex
from voicebus.orchestrator.kb_retrieval import CONTEXT_INTRO, Retriever
from voicebus.orchestrator.knowledge import Found, KnowledgeUnavailableError
from voicebus.orchestrator.outbox import RecordingOutbox
from voicebus.orchestrator.tools import CallTools, ToolError

pytestmark = pytest.mark.unit

CHUNKS = [
    Chunk("store.ab12cd34.0", "Store > Refunds", "Refunds take fourteen days."),
    Chunk("store.ab12cd34.1", "Store > Hours", "We open at nine."),
]


class FakeKnowledge:
    """One knowledge base ``faq`` of tenant ``acme``, searched with the real index."""

    def __init__(self, *, down: bool = False) -> None:
        self.index = LexicalIndex(CHUNKS)
        self.down = down
        self.asked: list[tuple[str, list[str], str, int]] = []

    async def search(
        self, tenant_id: str, kb_ids: list[str], query: str, top_k: int
    ) -> list[Found]:
        self.asked.append((tenant_id, kb_ids, query, top_k))
        if self.down:
            raise KnowledgeUnavailableError("down")
        if tenant_id != "acme" or "faq" not in kb_ids:
            return []
        return [Found("faq", "store", h.chunk.chunk_id, h.chunk.heading, h.chunk.text, h.score)
                for h in self.index.search(query, top_k)]  # fmt: skip


def librarian(tmp_path: Path, mode: str, rules: str) -> Agent:
    path = tmp_path / "librarian.yaml"
    path.write_text(textwrap.dedent(f"""
        name: Librarian
        system_prompt: You answer from the store's FAQ.
        llm: {{engine: scripted, options: {rules}}}
        knowledge: {{bases: [faq], mode: {mode}, top_k: 2}}
    """))  # fmt: skip
    return load_agent(path, {})


async def test_automatic_context_reaches_the_llm_with_chunk_ids_before_the_callers_words(
    tmp_path: Path,
) -> None:
    agent = librarian(tmp_path, "context", "{default: 'Fourteen days.'}")
    outbox = RecordingOutbox()
    retriever = Retriever(FakeKnowledge(), outbox)
    engine = Recorder(scripted.create({"default": "Fourteen days."}))
    conv, _, _ = make_conversation(agent, engine, outbox=outbox,
                                   services=CallServices(knowledge=retriever.context))  # fmt: skip
    await conv.handle(transcript("How long do refunds take?"), seq=5)
    await eventually(lambda: bool(of(outbox, AgentReply)))
    shown = engine.seen[-1]
    assert [m.role for m in shown] == ["system", "system", "user"]
    assert shown[1].content == (
        f"{CONTEXT_INTRO}\n[store.ab12cd34.0] (Store > Refunds) Refunds take fourteen days."
    )
    (event,) = of(outbox, KbRetrieved)
    assert (event.tenant_id, event.call_id) == ("acme", "c1")
    data = event.data
    assert (data.mode, data.knowledge_bases, data.query) == (
        "context", ["faq"], "How long do refunds take?",
    )  # fmt: skip
    assert [(c.kb_id, c.document_id, c.chunk_id) for c in data.chunks] == [
        ("faq", "store", "store.ab12cd34.0")
    ]
    assert data.chunks[0].score > 0
    # Kept in the history, so a takeover resumes with what the LLM was shown.
    assert conv.session.history[-3].content.startswith(CONTEXT_INTRO)


async def test_nothing_found_or_a_store_outage_adds_no_context(tmp_path: Path) -> None:
    agent = librarian(tmp_path, "context", "{}")
    for knowledge, events in ((FakeKnowledge(), 1), (FakeKnowledge(down=True), 0)):
        outbox = RecordingOutbox()
        retriever = Retriever(knowledge, outbox)
        assert await retriever.context(agent, "acme", "c1", "zebra crossings") is None
        assert len(of(outbox, KbRetrieved)) == events
        assert await retriever.context(agent, "globex", "c1", "refunds") is None
    tool_agent = librarian(tmp_path, "tool", "{}")
    assert await Retriever(FakeKnowledge(), RecordingOutbox()).context(
        tool_agent, "acme", "c1", "refunds"
    ) is None  # fmt: skip


async def test_the_tool_gives_the_llm_chunks_with_ids_and_the_answer_cites_one(
    tmp_path: Path,
) -> None:
    rules = (
        "{rules: [{match: refund, tool: search_knowledge, args: {query: refund policy}, "
        "after_tool: '{{chunks.0.text}} [{{chunks.0.chunk_id}}]', "
        "after_tool_failed: 'I do not know.'}]}"
    )
    agent = librarian(tmp_path, "tool", rules)
    outbox = RecordingOutbox()
    knowledge = FakeKnowledge()
    retriever = Retriever(knowledge, outbox)

    async def tools(agent: Agent, tenant_id: str, call_id: str) -> CallTools:
        search = retriever.tool(agent, tenant_id, call_id)
        assert search is not None
        return CallTools(tools=[search])

    engine = Recorder(scripted.create(agent.spec.llm.options))
    conv, _, _ = make_conversation(agent, engine, outbox=outbox,
                                   services=CallServices(tools=tools))  # fmt: skip
    await conv.prepare_tools()
    assert [spec.name for spec in conv.toolbox.specs] == ["search_knowledge"]
    await conv.handle(transcript("What about a refund?"), seq=5)
    await eventually(lambda: bool(of(outbox, AgentReply)))
    assert knowledge.asked == [("acme", ["faq"], "refund policy", 2)]
    (result,) = of(outbox, ToolResult)
    assert result.data.result == {"found": True, "chunks": [
        {"chunk_id": "store.ab12cd34.0", "heading": "Store > Refunds",
         "text": "Refunds take fourteen days."},
    ]}  # fmt: skip
    assert "store.ab12cd34.0" in engine.seen[-1][-1].content  # the tool message it read
    (event,) = of(outbox, KbRetrieved)
    assert (event.data.mode, [c.chunk_id for c in event.data.chunks]) == (
        "tool", ["store.ab12cd34.0"],
    )  # fmt: skip
    assert of(outbox, AgentReply)[-1].data.text == (
        "Refunds take fourteen days. [store.ab12cd34.0]"
    )


async def test_the_tool_refuses_an_empty_query_and_reports_an_outage(tmp_path: Path) -> None:
    agent = librarian(tmp_path, "tool", "{}")
    assert Retriever(FakeKnowledge(), RecordingOutbox()).tool(
        librarian(tmp_path, "context", "{}"), "acme", "c1"
    ) is None  # fmt: skip
    search = Retriever(FakeKnowledge(down=True), RecordingOutbox()).tool(agent, "acme", "c1")
    assert search is not None
    assert search.spec.name == "search_knowledge"
    assert search.spec.parameters["required"] == ["query"]
    with pytest.raises(ToolError, match="query"):
        await search.run({"query": "  "})
    with pytest.raises(ToolError, match="down"):
        await search.run({"query": "refunds"})
