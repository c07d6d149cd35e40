"""Tool calls written in reply text (Hermes/Qwen style), parsed from a stream."""

from __future__ import annotations

import pytest

from voicebus.engines.base import EngineError, ToolCall
from voicebus.engines.llm.text_tools import TextToolCallParser, parse_tool_call

pytestmark = pytest.mark.unit

CALL = (
    '<tool_call>\n{"name": "check_order_status", "arguments": {"order_id": "1234"}}\n</tool_call>'
)


def run(pieces: list[str]) -> tuple[str, list[ToolCall]]:
    parser = TextToolCallParser()
    spoken, calls = [], []
    for piece in pieces:
        text, found = parser.feed(piece)
        spoken.append(text)
        calls += found
    text, found = parser.finish()
    return "".join(spoken) + text, calls + found


@pytest.mark.parametrize("size", [1, 2, 3, 5, 11, 1000])
def test_a_call_split_anywhere_is_found(size: int) -> None:
    reply = "Let me look that up. " + CALL + " One moment."
    pieces = [reply[i : i + size] for i in range(0, len(reply), size)]
    spoken, calls = run(pieces)
    assert spoken == "Let me look that up.  One moment."
    assert [(c.name, dict(c.arguments)) for c in calls] == [
        ("check_order_status", {"order_id": "1234"})
    ]
    assert calls[0].id.startswith("call_")


def test_text_that_only_looks_like_a_tag_is_spoken() -> None:
    parser = TextToolCallParser()
    assert parser.feed("Use the <tool") == ("Use the ", [])
    assert parser.feed("box> now") == ("<toolbox> now", [])
    assert parser.finish() == ("", [])


def test_held_text_is_released_at_the_end() -> None:
    parser = TextToolCallParser()
    assert parser.feed("less than <") == ("less than ", [])
    assert parser.finish() == ("<", [])


def test_two_calls_and_string_arguments() -> None:
    second = (
        '<tool_call>{"name": "end_call", "arguments": "{\\"reason\\": \\"done\\"}"}</tool_call>'
    )
    _, calls = run([CALL + second])
    assert [c.name for c in calls] == ["check_order_status", "end_call"]
    assert dict(calls[1].arguments) == {"reason": "done"}


def test_an_unclosed_call_at_the_end_still_counts() -> None:
    spoken, calls = run([CALL.removesuffix("</tool_call>")])
    assert spoken == ""
    assert [c.name for c in calls] == ["check_order_status"]


@pytest.mark.parametrize(
    "body", ['{"name": "x", "arguments": [1]}', "{broken", '{"arguments": {}}', '{"name": ""}']
)
def test_malformed_calls_are_retryable_errors(body: str) -> None:
    with pytest.raises(EngineError) as caught:
        parse_tool_call(body)
    assert caught.value.retryable


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_bare_json_calls_without_tags_are_found(size: int) -> None:
    reply = (
        ' {"name": "check_order_status", "arguments": {"order_id": "1234"}}\n{"name": "end_call"}'
    )
    pieces = [reply[i : i + size] for i in range(0, len(reply), size)]
    spoken, calls = run(pieces)
    assert spoken == ""
    assert [(c.name, dict(c.arguments)) for c in calls] == [
        ("check_order_status", {"order_id": "1234"}),
        ("end_call", {}),
    ]


def test_bare_json_that_is_not_a_call_is_a_retryable_error() -> None:
    parser = TextToolCallParser()
    assert parser.feed('{"name": "end_call", "arguments": {""}}') == ("", [])
    with pytest.raises(EngineError) as caught:
        parser.finish()
    assert caught.value.retryable


def test_a_reply_starting_with_words_is_spoken_as_it_comes() -> None:
    parser = TextToolCallParser()
    assert parser.feed("  ") == ("", [])
    assert parser.feed("Sure {thing}") == ("  Sure {thing}", [])
