"""A conversation's turns from its events, and the difference between two conversations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from voicebus.contracts.replay import (
    CallerInput,
    ToolStep,
    TurnRecord,
    agent_version_of,
    caller_inputs,
    diff_turns,
    recorded_results,
    timed_turns,
    turn_latencies,
    turns_from_events,
)

pytestmark = pytest.mark.unit

EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("call.started.v1", {"agent_id": "support"}),
    ("flow.node_entered.v1", {"flow_id": "f", "node_id": "greet"}),
    ("agent.reply.v1", {"text": "Hi, how can I help?"}),
    ("transcript.final.v1", {"text": "mhm", "backchannel": True}),
    ("transcript.final.v1", {"text": "  "}),
    ("transcript.final.v1", {"text": "Order 1234 please"}),
    ("tool.called.v1", {"tool_call_id": "tc-1", "name": "lookup", "arguments": {"id": "1234"}}),
    ("tool.result.v1", {"tool_call_id": "tc-1", "name": "lookup", "ok": True,
                        "result": {"status": "shipped"}}),
    ("flow.node_entered.v1", {"flow_id": "f", "node_id": "answer"}),
    ("agent.reply.v1", {"text": "It shipped."}),
    ("dtmf.received.v1", {"digits": "9"}),
    ("agent.reply.v1", {"text": "Goodbye."}),
    ("call.ended.v1", {"reason": "agent_hangup"}),
]  # fmt: skip


def test_turns_split_at_each_caller_input_and_carry_what_the_agent_did() -> None:
    turns = turns_from_events(EVENTS)
    assert [t.caller for t in turns] == [
        None, CallerInput(text="Order 1234 please"), CallerInput(dtmf="9"),
    ]  # fmt: skip
    assert [t.reply for t in turns] == ["Hi, how can I help?", "It shipped.", "Goodbye."]
    assert [t.nodes for t in turns] == [["greet"], ["answer"], []]
    assert turns[1].tools == [
        ToolStep(name="lookup", arguments={"id": "1234"}, ok=True, result={"status": "shipped"})
    ]
    assert [t.ended for t in turns] == [False, False, True]
    assert caller_inputs(turns) == [CallerInput(text="Order 1234 please"), CallerInput(dtmf="9")]
    (recorded,) = recorded_results(turns)
    assert (recorded.name, recorded.arguments, recorded.result) == (
        "lookup", {"id": "1234"}, {"status": "shipped"},
    )  # fmt: skip


def test_a_caller_hang_up_is_not_the_agent_ending_the_call() -> None:
    turns = turns_from_events([("call.ended.v1", {"reason": "caller_hangup"})])
    assert turns == [TurnRecord()]


def test_the_same_conversation_has_no_difference_up_to_spaces_and_case() -> None:
    turns = turns_from_events(EVENTS)
    again = [t.model_copy(update={"reply": f"  {t.reply.upper()} "}) for t in turns]
    assert diff_turns(turns, again) == []


def test_every_kind_of_difference_is_named_with_its_turn() -> None:
    turns = turns_from_events(EVENTS)
    changed = [
        turns[0],
        turns[1].model_copy(update={"nodes": ["other"], "tools": []}),
        turns[2].model_copy(update={"reply": "Bye then.", "ended": False}),
    ]
    found = [(d.turn, d.kind, d.original, d.replayed) for d in diff_turns(turns, changed)]
    assert found == [
        (1, "transitions", ["answer"], ["other"]),
        (1, "tools", [{"name": "lookup", "arguments": {"id": "1234"}}], []),
        (2, "reply", "Goodbye.", "Bye then."),
        (2, "end", True, False),
    ]


def test_a_turn_missing_from_the_replay_differs() -> None:
    turns = turns_from_events(EVENTS)
    kinds = {(d.turn, d.kind) for d in diff_turns(turns, turns[:2])}
    assert kinds == {(2, "caller"), (2, "reply"), (2, "end")}


@pytest.mark.parametrize("fields", [{}, {"text": "hi", "dtmf": "1"}, {"dtmf": "12x"}])
def test_a_caller_input_is_text_or_keys(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        CallerInput(**fields)


def _at(events: list[tuple[str, dict[str, Any]]], ms: list[int]) -> list[Any]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [(kind, start + timedelta(milliseconds=t), data)
            for (kind, data), t in zip(events, ms, strict=True)]  # fmt: skip


def test_each_turn_is_timed_from_the_end_of_speech_to_the_agents_first_audio() -> None:
    events = _at([
        ("call.started.v1", {}),
        ("agent.speech.started.v1", {"text": "Hi"}),           # the greeting: no turn to time
        ("transcript.final.v1", {"text": "mhm", "backchannel": True, "end_ms": 900}),
        # Spoken until 2000 ms into the call; the transcript came 300 ms later.
        ("transcript.final.v1", {"text": "Order 1234 please", "end_ms": 2000}),
        ("agent.reply.v1", {"text": "It shipped."}),
        ("agent.speech.started.v1", {"text": "It shipped."}),
        ("agent.speech.started.v1", {"text": "Anything else?"}),  # the same turn, later
        ("dtmf.received.v1", {"digits": "9"}),
        ("agent.speech.started.v1", {"text": "Goodbye."}),
        ("transcript.final.v1", {"text": "hello?", "end_ms": 6000}),  # never answered
    ], [0, 100, 1000, 2300, 2500, 2750, 4000, 5000, 5400, 6200])  # fmt: skip
    assert turn_latencies(events) == [None, 750, 400, None]
    turns = timed_turns(events)
    assert [t.latency_ms for t in turns] == [None, 750, 400, None]
    assert [t.reply for t in turns] == ["", "It shipped.", "", ""]


def test_the_caller_differs_only_in_words_not_in_punctuation_or_case() -> None:
    heard = [TurnRecord(), TurnRecord(caller=CallerInput(text="Where is my order?"))]
    again = [TurnRecord(), TurnRecord(caller=CallerInput(text="where is my  order"))]
    assert diff_turns(heard, again) == []
    misheard = [TurnRecord(), TurnRecord(caller=CallerInput(text="where is my border"))]
    (d,) = diff_turns(heard, misheard)
    assert (d.turn, d.kind, d.original, d.replayed) == (
        1, "caller", "where is my order", "where is my border",
    )  # fmt: skip


def test_the_version_a_call_ran_is_its_first_replys() -> None:
    replies = [("agent.reply.v1", {"text": "x", "agent_version": 3}),
               ("agent.reply.v1", {"text": "y", "agent_version": 4})]  # fmt: skip
    assert agent_version_of(replies) == 3
    assert agent_version_of(EVENTS) is None
