"""Say chunks are spoken in order, once, and never after their utterance closed."""

from __future__ import annotations

import pytest

from voicebus.contracts.commands import SayData
from voicebus.media.say import Dropped, SayAssembler

pytestmark = pytest.mark.unit


def say(utt: str, seq: int, text: str = "x", *, final: bool = False) -> SayData:
    return SayData(utterance_id=utt, seq=seq, text=text, final=final)


def test_in_order_chunks_are_ready_at_once() -> None:
    a = SayAssembler()
    assert [c.text for c in a.add(say("u1", 0, "Hello."), 1.0).ready] == ["Hello."]
    out = a.add(say("u1", 1, "Bye.", final=True), 2.0)
    assert [(c.seq, c.text, c.final, c.received_at) for c in out.ready] == [(1, "Bye.", True, 2.0)]
    assert a.is_closed("u1")


def test_out_of_order_chunks_wait_for_the_gap() -> None:
    a = SayAssembler()
    assert a.add(say("u1", 2, "c", final=True), 0).ready == []
    assert a.add(say("u1", 1, "b"), 0).ready == []
    out = a.add(say("u1", 0, "a"), 0)
    assert [c.text for c in out.ready] == ["a", "b", "c"]
    assert a.is_closed("u1")


def test_duplicates_are_dropped() -> None:
    a = SayAssembler()
    a.add(say("u1", 0, "a"), 0)
    assert a.add(say("u1", 0, "a"), 0).dropped is Dropped.DUPLICATE
    a.add(say("u1", 2, "c"), 0)
    assert a.add(say("u1", 2, "c"), 0).dropped is Dropped.DUPLICATE


def test_chunks_after_the_final_or_after_close_are_dropped() -> None:
    a = SayAssembler()
    a.add(say("u1", 0, "a", final=True), 0)
    assert a.add(say("u1", 1, "late"), 0).dropped is Dropped.CLOSED
    a.add(say("u2", 0, "a"), 0)
    a.close("u2")  # interrupted
    out = a.add(say("u2", 1, "b"), 0)
    assert out.dropped is Dropped.CLOSED
    assert out.ready == []


def test_utterances_are_independent() -> None:
    a = SayAssembler()
    a.add(say("u1", 0, "a1"), 0)
    out = a.add(say("u2", 0, "b1"), 0)
    assert [(c.utterance_id, c.text) for c in out.ready] == [("u2", "b1")]
    assert [c.text for c in a.add(say("u1", 1, "a2"), 0).ready] == ["a2"]


def test_too_many_waiting_chunks_give_the_utterance_up() -> None:
    a = SayAssembler(max_waiting=3)
    for seq in range(1, 4):
        assert a.add(say("u1", seq), 0).dropped is None
    assert a.add(say("u1", 4), 0).dropped is Dropped.OVERFLOW
    assert a.is_closed("u1")


def test_closed_ids_are_remembered_within_a_bound() -> None:
    a = SayAssembler(remember=2)
    for utt in ("u1", "u2", "u3"):
        a.close(utt)
    assert not a.is_closed("u1")  # forgotten: the oldest
    assert a.is_closed("u2")
    assert a.is_closed("u3")


def test_interruption_flag_is_kept_per_chunk() -> None:
    a = SayAssembler()
    data = SayData(utterance_id="u1", seq=0, text="x", allow_interruptions=False)
    assert a.add(data, 0).ready[0].allow_interruptions is False
