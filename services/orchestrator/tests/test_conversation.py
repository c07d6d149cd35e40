"""One call's conversation with fakes: greeting, a tool turn, hang-up, replays, takeover."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from orchestrator_fakes import (
    RULES,
    Recorder,
    eventually,
    make_conversation,
    of,
    says,
    stopped,
    transcript,
)

from voicebus.contracts.commands import HangUp
from voicebus.contracts.events import AgentReply, ToolCalled, ToolResult
from voicebus.engines.llm import scripted
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.conversation import ConversationSettings
from voicebus.orchestrator.session import MemorySessionStore

pytestmark = pytest.mark.unit


async def test_the_greeting_is_templated_chunked_and_saved(agent: Agent) -> None:
    conv, outbox, store = make_conversation(
        agent, scripted.create(RULES), context={"customer_name": "Ada"}
    )
    await conv.start()
    sent = says(outbox)
    assert [(s.data.seq, s.data.text, s.data.final) for s in sent] == [
        (0, "Hi Ada, this is Acme.", False),
        (1, "How can I help?", True),
    ]
    assert all(s.data.allow_interruptions for s in sent)
    assert len({s.data.utterance_id for s in sent}) == 1
    (reply,) = of(outbox, AgentReply)
    assert reply.data.text == "Hi Ada, this is Acme. How can I help?"
    assert reply.data.engine is None
    loaded = await store.load("c1")
    assert loaded is not None
    session, _revision = loaded
    assert [(m.role, m.content) for m in session.history] == [
        ("system", "You help Ada."),
        ("assistant", "Hi Ada, this is Acme. How can I help?"),
    ]


async def test_a_turn_streams_chunks_runs_the_tool_and_answers_from_its_result(
    agent: Agent,
) -> None:
    conv, outbox, store = make_conversation(agent, scripted.create(RULES))
    await conv.start()
    outbox.sent.clear()
    await conv.handle(transcript("Where is my order 1234?"), seq=10)
    await conv.idle()
    kinds = [type(m).__name__ for m in outbox.sent]
    assert kinds == ["Say", "ToolCalled", "ToolResult", "Say", "Say", "Say", "AgentReply"]
    sent = says(outbox)
    assert [s.data.text for s in sent] == [
        "Let me check order 1234.",
        "Order 1234 is shipped.",
        "Anything else?",
        "",
    ]
    assert [s.data.seq for s in sent] == [0, 1, 2, 3]
    assert [s.data.final for s in sent] == [False, False, False, True]
    called, result = of(outbox, ToolCalled)[0], of(outbox, ToolResult)[0]
    assert called.data.name == "check_order_status"
    assert called.data.arguments == {"order_id": "1234"}
    assert result.data.ok
    assert result.data.result == {"found": True, "order_id": "1234", "status": "shipped"}
    (reply,) = of(outbox, AgentReply)
    assert reply.data.complete
    assert reply.data.text == "Let me check order 1234. Order 1234 is shipped. Anything else?"
    assert reply.data.utterance_id == sent[0].data.utterance_id
    assert reply.data.engine == "scripted"
    assert reply.data.llm_first_token_ms is not None
    loaded = await store.load("c1")
    assert loaded is not None
    session = loaded[0]
    assert session.turns == 1
    assert session.last_seq == 10
    assert [m.role for m in session.history] == [
        "system", "assistant", "user", "assistant", "tool", "assistant",
    ]  # fmt: skip
    assert session.history[3].tool_calls[0].name == "check_order_status"


async def test_end_call_speaks_the_goodbye_then_hangs_up_once_it_played(agent: Agent) -> None:
    conv, outbox, store = make_conversation(agent, scripted.create(RULES))
    await conv.start()
    outbox.sent.clear()
    await conv.handle(transcript("thanks, bye"), seq=3)
    await eventually(lambda: bool(of(outbox, AgentReply)))
    sent = says(outbox)
    assert [(s.data.text, s.data.final) for s in sent] == [("Goodbye!", False), ("", True)]
    assert [type(m).__name__ for m in outbox.sent[:2]] == ["ToolCalled", "ToolResult"]
    await asyncio.sleep(0.2)
    assert not of(outbox, HangUp)  # the goodbye has not played yet
    loaded = await store.load("c1")
    assert loaded is not None
    assert loaded[0].ending
    await conv.handle(transcript("order 1234"), seq=4)  # too late: the call is ending
    await conv.handle(stopped(sent[0].data.utterance_id), seq=5)
    await eventually(lambda: bool(of(outbox, HangUp)))
    (hangup,) = of(outbox, HangUp)
    assert hangup.data.after_playback
    assert outbox.sent[-1] is hangup
    assert len(says(outbox)) == 2


async def test_without_playback_news_the_hang_up_comes_after_a_bound(agent: Agent) -> None:
    settings = ConversationSettings(hangup_wait_max_s=0.3)
    conv, outbox, _ = make_conversation(agent, scripted.create(RULES), settings=settings)
    await conv.start()
    await conv.handle(transcript("bye"))
    await eventually(lambda: bool(of(outbox, HangUp)), timeout=10)


async def test_events_already_handled_are_skipped(agent: Agent) -> None:
    conv, outbox, _ = make_conversation(agent, scripted.create(RULES))
    await conv.start()
    await conv.handle(transcript("order 1234"), seq=7)
    await conv.idle()
    await conv.handle(transcript("order 1234"), seq=7)
    await conv.handle(transcript("order 1234"), seq=6)
    await conv.idle()
    assert len(of(outbox, AgentReply)) == 2  # greeting + one answer
    assert conv.session.turns == 1


async def test_a_second_instance_continues_from_the_saved_session(agent: Agent) -> None:
    store = MemorySessionStore()
    first, _, _ = make_conversation(agent, scripted.create(RULES), store=store)
    await first.start()
    await first.handle(transcript("order 1234"), seq=4)
    await first.idle()

    loaded = await store.load("c1")
    assert loaded is not None
    engine = Recorder(scripted.create(RULES))
    second, outbox, _ = make_conversation(
        agent, engine, store=store, session=loaded[0], revision=loaded[1]
    )
    await second.resume()
    assert not outbox.sent  # no second greeting
    await second.handle(transcript("order 1234"), seq=4)  # replayed: already answered
    await second.handle(transcript("what about order 99"), seq=5)
    await second.idle()
    shown = [m.content for m in engine.seen[0] if m.role == "user"]
    assert shown == ["order 1234", "what about order 99"]
    assert second.session.turns == 2

    # The first instance wakes up and tries to save: it lost the call.
    await first.handle(transcript("long"), seq=6)
    await first.idle()
    assert first.lost
    saved = await store.load("c1")
    assert saved is not None
    assert saved[0].turns == 2


class _PrefillingEngine:
    """The scripted engine, plus the prefill capability, recording what it was given."""

    name = "prefilling"

    def __init__(self) -> None:
        self.inner = scripted.create(RULES)
        self.prefills: list[tuple[list[str], list[str]]] = []

    def stream(self, messages: Any, tools: Any = ()) -> Any:
        return self.inner.stream(messages, tools)

    async def prefill(self, messages: Any, tools: Any = ()) -> None:
        self.prefills.append(([m.role for m in messages], [t.name for t in tools]))


async def test_the_prompt_is_prefilled_while_the_agent_speaks(agent: Agent) -> None:
    engine = _PrefillingEngine()
    conv, _outbox, _store = make_conversation(agent, engine)
    await conv.start()
    await conv.idle()
    (prefill,) = engine.prefills  # while the greeting plays: the next request's prefix
    roles, tools = prefill
    assert roles == ["system", "assistant"]
    assert "check_order_status" in tools
    await conv.handle(transcript("Where is my order 1234?"), seq=10)
    await conv.idle()
    assert len(engine.prefills) == 2  # while the reply plays: the next turn's prefix
    roles, _tools = engine.prefills[1]
    assert roles[0] == "system"
    assert "user" in roles
    assert "tool" in roles
    await conv.handle(transcript("Thanks, bye."), seq=11)
    await conv.idle()
    assert len(engine.prefills) == 2  # the call is ending: nothing more to prepare
