"""The scripted LLM engine: rules, tool calls, replies after tools, word streaming."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest

from voicebus.engines.base import (
    LLM,
    ChatMessage,
    EngineError,
    LLMChunk,
    LLMEngine,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from voicebus.engines.llm import scripted

pytestmark = pytest.mark.unit

ORDER_RULES: dict[str, Any] = {
    "rules": [
        {
            "match": r"order\D{0,20}?(?P<order_id>\d[\d -]*\d)",
            "reply": "Let me check order {{order_id}}.",
            "tool": "check_order_status",
            "args": {"order_id": "{{order_id}}", "nested": ["{{1}}"], "n": 3},
            "after_tool": "Order {{order_id}} {{summary}}. Carrier: {{shipping.carrier}}.",
            "after_tool_failed": "I can't find order {{order_id}}.",
        },
        {"match": r"\b(bye|goodbye)\b", "tool": "end_call"},
        {"match": r"\bhours\b", "reply": "We are open nine to five."},
    ],
    "default": "Sorry?",
}


async def _run(engine: LLMEngine, messages: Sequence[ChatMessage]) -> list[LLMChunk]:
    return [chunk async for chunk in engine.stream(messages)]


def _text(chunks: Sequence[LLMChunk]) -> str:
    return "".join(c.text for c in chunks if isinstance(c, TextDelta))


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage("system", "be brief"), ChatMessage("user", text)]


async def test_a_matching_rule_replies_in_word_deltas_then_calls_its_tool() -> None:
    engine = scripted.create(ORDER_RULES)
    chunks = await _run(engine, _user("Hi, where is my ORDER 1234?"))
    deltas = [c for c in chunks if isinstance(c, TextDelta)]
    assert [d.text for d in deltas] == ["Let", " me", " check", " order", " 1234."]
    assert chunks[-1] == ToolCall(
        id="call_1",
        name="check_order_status",
        arguments={"order_id": "1234", "nested": ["1234"], "n": 3},
    )


async def test_after_the_tool_result_the_rule_answers_with_the_result_fields() -> None:
    engine = scripted.create(ORDER_RULES)
    call = ToolCall("call_1", "check_order_status", {"order_id": "1234"})
    result = {"found": True, "summary": "shipped Monday", "shipping": {"carrier": "UPS"}}
    history = [
        *_user("where is my order 1234"),
        ChatMessage("assistant", "Let me check order 1234.", tool_calls=[call]),
        ChatMessage("tool", json.dumps(result), tool_call_id="call_1"),
    ]
    chunks = await _run(engine, history)
    assert _text(chunks) == "Order 1234 shipped Monday. Carrier: UPS."
    assert not any(isinstance(c, ToolCall) for c in chunks)


@pytest.mark.parametrize(
    "content", [json.dumps({"found": False}), json.dumps({"error": "boom"}), "not json"]
)
async def test_a_failed_tool_result_uses_after_tool_failed(content: str) -> None:
    engine = scripted.create(ORDER_RULES)
    call = ToolCall("call_1", "check_order_status", {"order_id": "99"})
    history = [
        *_user("order 99 please"),
        ChatMessage("assistant", "", tool_calls=[call]),
        ChatMessage("tool", content, tool_call_id="call_1"),
    ]
    assert _text(await _run(engine, history)) == "I can't find order 99."


async def test_tool_call_ids_count_the_calls_already_in_history() -> None:
    engine = scripted.create(ORDER_RULES)
    earlier = ToolCall("call_1", "check_order_status", {"order_id": "1"})
    history = [
        *_user("order 11"),
        ChatMessage("assistant", "", tool_calls=[earlier]),
        ChatMessage("tool", "{}", tool_call_id="call_1"),
        ChatMessage("assistant", "ok"),
        ChatMessage("user", "thanks, bye"),
    ]
    chunks = await _run(engine, history)
    assert chunks == [ToolCall("call_2", "end_call", {})]


async def test_no_match_gives_the_default_and_no_user_message_gives_nothing() -> None:
    engine = scripted.create(ORDER_RULES)
    assert _text(await _run(engine, _user("what's the weather"))) == "Sorry?"
    assert await _run(engine, [ChatMessage("system", "hi")]) == []


async def test_rules_are_tried_in_order_and_case_can_matter() -> None:
    options = {"rules": [{"match": "Hours", "reply": "first"}, {"match": "h", "reply": "second"}]}
    assert _text(await _run(scripted.create(options), _user("hours?"))) == "first"
    strict = scripted.create({**options, "ignore_case": False})
    assert _text(await _run(strict, _user("hours?"))) == "second"


async def test_a_tool_result_after_an_unmatched_message_gives_nothing() -> None:
    engine = scripted.create(ORDER_RULES)
    history = [*_user("blah"), ChatMessage("tool", "{}", tool_call_id="x")]
    assert await _run(engine, history) == []


async def test_a_slow_stream_can_be_cancelled_between_words() -> None:
    engine = scripted.create({"default": "one two three four five six", "delay_ms": 200})
    got: list[str] = []

    async def consume() -> None:
        async for chunk in engine.stream(_user("x")):
            assert isinstance(chunk, TextDelta)
            got.append(chunk.text)

    task = asyncio.create_task(consume())
    async with asyncio.timeout(10):
        while not got:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 1 <= len(got) < 6


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"rules": [{"match": "(unclosed"}]}, "rules.0.match"),
        ({"rules": [{"match": "x", "replly": "typo"}]}, "rules.0.replly"),
        ({"defualt": "typo"}, "defualt"),
        ({"delay_ms": -1}, "delay_ms"),
    ],
)
def test_bad_options_are_an_engine_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(EngineError, match=f"scripted: invalid options: {field}"):
        scripted.create(options)


def test_render_fills_known_names_and_blanks_unknown_ones() -> None:
    values = {"a": "1", "b": {"c": 2}, "n": None}
    assert scripted.render("{{a}}-{{ b.c }}-{{missing}}-{{b.x}}-{{n}}", values) == "1-2---"


def test_render_indexes_into_lists() -> None:
    values = {"chunks": [{"id": "a.1", "text": "Refunds take 14 days."}]}
    rendered = scripted.render("{{chunks.0.text}} [{{chunks.0.id}}]{{chunks.1.id}}", values)
    assert rendered == "Refunds take 14 days. [a.1]"


def test_register_makes_it_available_by_name() -> None:
    scripted.register()
    engine = LLM.create("scripted", {"default": "hi"})
    assert isinstance(engine, scripted.ScriptedLLM)
    assert isinstance(engine, LLMEngine)
    assert engine.name == "scripted"


async def test_a_flow_step_is_answered_from_its_task_message() -> None:
    engine = scripted.create(
        {"rules": [{"match": r"The caller is (?P<n>\w+)", "reply": "Hi {{n}}."}]}
    )
    messages = [
        ChatMessage(role="system", content="You help."),
        ChatMessage(role="user", content="my account"),
        ChatMessage(role="system", content="The caller is Ada. Greet them."),
    ]
    chunks = await _run(engine, messages)
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "Hi Ada."
    # A conversation that starts with only its system prompt is not answered.
    assert await _run(engine, messages[:1]) == []


async def test_a_repeating_rule_calls_its_tool_while_tools_are_offered() -> None:
    rule = {"match": "status", "tool": "check", "repeat": True, "after_tool": "It is {{s}}."}
    engine = scripted.create({"rules": [rule]})
    spec = ToolSpec("check", "d")
    history = [
        ChatMessage(role="user", content="status?"),
        ChatMessage(role="assistant", tool_calls=(ToolCall("call_1", "check", {}),)),
        ChatMessage(role="tool", content='{"s": "ready"}', tool_call_id="call_1"),
    ]
    again = [c async for c in engine.stream(history, [spec])]
    assert [(c.id, c.name) for c in again if isinstance(c, ToolCall)] == [("call_2", "check")]
    spoken = [c async for c in engine.stream(history, [])]
    assert "".join(c.text for c in spoken if isinstance(c, TextDelta)) == "It is ready."
