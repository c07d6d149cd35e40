"""Turns that do not go to plan: interruptions, overlapping transcripts, failing or
silent engines, small models that must not see the agent's fixed lines."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest
from orchestrator_fakes import (
    RULES,
    Failing,
    Recorder,
    eventually,
    interrupted,
    make_conversation,
    of,
    says,
    transcript,
)

from voicebus.contracts.events import AgentReply, CallError
from voicebus.engines.base import TextDelta, TokenUsage
from voicebus.engines.llm import scripted
from voicebus.orchestrator.agents import Agent, load_agent

pytestmark = pytest.mark.unit


async def test_an_interruption_cancels_the_reply_and_keeps_only_what_was_heard(
    agent: Agent,
) -> None:
    slow = scripted.create({**RULES, "delay_ms": 100})
    conv, outbox, store = make_conversation(agent, slow)
    await conv.start()
    outbox.sent.clear()
    await conv.handle(transcript("tell me something long"))
    await eventually(lambda: len(says(outbox)) >= 1)
    utterance_id = says(outbox)[0].data.utterance_id
    await conv.handle(interrupted(utterance_id, "One two"))
    said = len(says(outbox))
    await asyncio.sleep(0.5)
    assert len(says(outbox)) == said  # generation stopped
    assert said < 4
    (reply,) = of(outbox, AgentReply)
    assert not reply.data.complete
    assert reply.data.text.startswith("One two three.")
    loaded = await store.load("c1")
    assert loaded is not None
    assert loaded[0].history[-1].content == "One two"
    assert loaded[0].history[-1].role == "assistant"


async def test_an_interruption_after_the_reply_was_generated_trims_it_too(agent: Agent) -> None:
    conv, outbox, store = make_conversation(agent, scripted.create(RULES))
    await conv.start()
    greeting_id = says(outbox)[0].data.utterance_id
    await conv.handle(transcript("long"))
    await conv.idle()
    reply_id = says(outbox)[-1].data.utterance_id
    await conv.handle(interrupted(reply_id, "One two three. Four"))
    await conv.handle(interrupted(greeting_id, "Hi there,"))
    loaded = await store.load("c1")
    assert loaded is not None
    assert [m.content for m in loaded[0].history if m.role == "assistant"] == [
        "Hi there,",
        "One two three. Four",
    ]


async def test_a_new_transcript_cancels_the_reply_in_progress(agent: Agent) -> None:
    engine = Recorder(scripted.create({**RULES, "delay_ms": 100}))
    conv, outbox, _ = make_conversation(agent, engine)
    await conv.start()
    outbox.sent.clear()
    await conv.handle(transcript("long"))
    await eventually(lambda: len(says(outbox)) >= 1)
    first_id = says(outbox)[0].data.utterance_id
    await conv.handle(transcript("order 1234"))
    await conv.idle()
    replies = of(outbox, AgentReply)
    assert [r.data.complete for r in replies] == [False, True]
    first = [s for s in says(outbox) if s.data.utterance_id == first_id]
    assert first[-1].data.final  # the cancelled utterance was closed
    assert first[-1].data.text == ""
    roles = [(m.role, m.content[:8]) for m in engine.seen[-1]]
    assert roles[-5:] == [
        ("user", "long"),
        ("assistant", "One two "),
        ("user", "order 12"),
        ("assistant", "Let me c"),
        ("tool", '{"found"'),
    ]


async def test_an_engine_failure_apologizes_and_reports_an_error(agent: Agent) -> None:
    conv, outbox, store = make_conversation(agent, Failing())
    await conv.start()
    outbox.sent.clear()
    await conv.handle(transcript("hello"))
    await conv.idle()
    (error,) = of(outbox, CallError)
    assert error.data.code == "engine_error"
    assert error.data.retryable
    sent = says(outbox)
    assert sent[0].data.text == "Sorry, I had a problem there."
    assert sent[-1].data.final
    loaded = await store.load("c1")
    assert loaded is not None
    assert loaded[0].history[-1].content == (
        "Sorry, I had a problem there. Could you say that again?"
    )


async def test_a_failure_mid_reply_keeps_what_was_said_then_apologizes(agent: Agent) -> None:
    engine = Failing([TextDelta("Well, let me see."), TextDelta(" The order")])
    conv, outbox, _ = make_conversation(agent, engine)
    await conv.start()
    outbox.sent.clear()
    await conv.handle(transcript("hello"))
    await conv.idle()
    texts = [s.data.text for s in says(outbox)]
    assert texts == [
        "Well, let me see.",
        "Sorry, I had a problem there.",
        "Could you say that again?",
        "",
    ]
    assert conv.session.history[-1].content == (
        "Well, let me see. Sorry, I had a problem there. Could you say that again?"
    )


SMALL_MODEL_AGENT = """
name: Small
system_prompt: Be brief.
greeting: Hello, Acme here.
goodbye: Bye now.
llm: {engine: scripted, show_fixed_lines: false}
tools:
  - {type: data, name: check_order_status, description: d, file: orders.json, key: order_id,
     reply: "Order {{order_id}} is {{status}}.", reply_not_found: "No order {{order_id}}."}
"""


async def test_a_tool_reply_ends_the_turn_and_fixed_lines_can_be_hidden_from_the_llm(
    tmp_path: Path,
) -> None:
    (tmp_path / "orders.json").write_text('{"1234": {"status": "shipped"}}')
    path = tmp_path / "small.yaml"
    path.write_text(textwrap.dedent(SMALL_MODEL_AGENT))
    small = load_agent(path, {})
    engine = Recorder(scripted.create(RULES))
    conv, outbox, _ = make_conversation(small, engine)
    await conv.start()
    outbox.sent.clear()
    await conv.handle(transcript("order 1234"))
    await conv.idle()
    assert len(engine.seen) == 1  # the tool answered: no second LLM round
    assert [s.data.text for s in says(outbox)] == [
        "Let me check order 1234.",
        "Order 1234 is shipped.",
        "",
    ]
    await conv.handle(transcript("order 77"))
    await conv.idle()
    assert says(outbox)[-2].data.text == "No order 77."
    shown = [(m.role, m.content) for m in engine.seen[-1] if m.role != "tool"]
    # Neither the greeting nor the tool's spoken answer reached the LLM.
    assert shown == [
        ("system", "Be brief."),
        ("user", "order 1234"),
        ("assistant", "Let me check order 1234."),
        ("user", "order 77"),
    ]
    stored = [m.content for m in conv.session.history if m.role == "assistant"]
    assert "Hello, Acme here." in stored
    assert "Order 1234 is shipped." in stored


async def test_an_empty_llm_reply_is_replaced_by_the_fallback_line(agent: Agent) -> None:
    conv, outbox, _ = make_conversation(agent, Failing.silent())
    await conv.start()
    outbox.sent.clear()
    await conv.handle(transcript("hello"))
    await conv.idle()
    assert [s.data.text for s in says(outbox)] == [
        "Sorry, I had a problem there.",
        "Could you say that again?",
        "",
    ]
    assert not of(outbox, CallError)


async def test_the_reply_event_carries_the_tokens_the_engine_reported(agent: Agent) -> None:
    counted = Failing([TextDelta("Fine, thanks."), TokenUsage(40, 3)], fail=False)
    conv, outbox, _ = make_conversation(agent, counted)
    await conv.start()
    outbox.sent.clear()
    await conv.handle(transcript("hello"))
    await conv.idle()
    (reply,) = of(outbox, AgentReply)
    assert reply.data.text == "Fine, thanks."
    assert (reply.data.llm_tokens_in, reply.data.llm_tokens_out) == (40, 3)
    assert reply.data.engine == "failing"
