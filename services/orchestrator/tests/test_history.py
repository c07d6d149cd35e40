"""History edits: trimming to what was heard, closing tool calls, bounding size."""

from __future__ import annotations

import json

import pytest

from voicebus.engines.base import ToolCall
from voicebus.orchestrator.history import bound, close_tool_calls, trim_to_heard
from voicebus.orchestrator.session import StoredMessage

pytestmark = pytest.mark.unit


def _system() -> StoredMessage:
    return StoredMessage(role="system", content="prompt")


def _user(text: str) -> StoredMessage:
    return StoredMessage(role="user", content=text)


def _tool(call_id: str) -> StoredMessage:
    return StoredMessage(role="tool", content="{}", tool_call_id=call_id)


def test_an_interrupted_reply_keeps_only_the_words_heard() -> None:
    history = [
        _system(),
        _user("where is my order"),
        StoredMessage.assistant("Your order shipped Monday. It arrives Thursday.", "a-1"),
    ]
    assert trim_to_heard(history, "a-1", "Your order shipped Monday. It")
    assert history[-1].content == "Your order shipped Monday. It"
    assert history[-1].utterance_id == "a-1"


def test_the_heard_words_refill_each_round_of_the_utterance_in_order() -> None:
    call = ToolCall("call_1", "check_order_status", {"order_id": "1"})
    history = [
        _system(),
        StoredMessage.assistant("Hello there.", "a-0"),
        _user("order 1"),
        StoredMessage.assistant("Let me check.", "a-1", [call]),
        _tool("call_1"),
        StoredMessage.assistant("Order 1 shipped. It arrives Monday.", "a-1"),
    ]
    assert trim_to_heard(history, "a-1", "Let me check. Order 1")
    assert [m.content for m in history if m.role == "assistant"] == [
        "Hello there.",
        "Let me check.",
        "Order 1",
    ]


def test_an_emptied_message_goes_unless_it_carries_tool_calls() -> None:
    call = ToolCall("call_1", "t", {})
    history = [
        _user("hi"),
        StoredMessage.assistant("Checking.", "a-1", [call]),
        _tool("call_1"),
        StoredMessage.assistant("Found it.", "a-1"),
    ]
    assert trim_to_heard(history, "a-1", "")
    assert [m.role for m in history] == ["user", "assistant", "tool"]
    assert history[1].content == ""
    assert history[1].tool_calls[0].id == "call_1"


def test_an_unknown_utterance_changes_nothing() -> None:
    history = [_user("hi"), StoredMessage.assistant("Hello.", "a-1")]
    before = list(history)
    assert not trim_to_heard(history, "a-2", "Hel")
    assert history == before


def test_tool_calls_without_results_get_a_cancelled_result_in_place() -> None:
    calls = [ToolCall("c1", "a", {}), ToolCall("c2", "b", {})]
    history = [
        _user("x"),
        StoredMessage.assistant("", "a-1", calls),
        _tool("c1"),
        _user("y"),
    ]
    close_tool_calls(history)
    assert [(m.role, m.tool_call_id) for m in history] == [
        ("user", None),
        ("assistant", None),
        ("tool", "c1"),
        ("tool", "c2"),
        ("user", None),
    ]
    assert json.loads(history[3].content) == {"error": "cancelled"}
    close_tool_calls(history)
    assert len(history) == 5


def test_bound_drops_whole_old_turns_and_keeps_the_system_prompt() -> None:
    call = ToolCall("c1", "t", {})
    history = [
        _system(),
        _user("1"),
        StoredMessage.assistant("", "a-1", [call]),
        _tool("c1"),
        StoredMessage.assistant("one", "a-1"),
        _user("2"),
        StoredMessage.assistant("two", "a-2"),
    ]
    bound(history, 3)
    # Cutting 4 messages would orphan nothing, but the cut moves to the next user message.
    assert [m.content for m in history] == ["prompt", "2", "two"]
    bound(history, 10)
    assert len(history) == 3


def test_bound_never_drops_the_turn_in_progress() -> None:
    call = ToolCall("c1", "t", {})
    history = [_system(), _user("1"), StoredMessage.assistant("", "a", [call]), _tool("c1")]
    bound(history, 1)
    assert len(history) == 4
