"""Playback marks and caller frame numbering of one call (pure)."""

from __future__ import annotations

import pytest

from voicebus.contracts.audio import AudioFrame, PlaybackMark
from voicebus.gateway.calls import NO_UTTERANCE, EchoOutcome, InboundClock, PlaybackTracker

pytestmark = pytest.mark.unit

PCM_20MS = b"\x00\x00" * 160


def frame(seq: int, utterance: str | None = "u1", *, last: bool = False) -> AudioFrame:
    return AudioFrame(PCM_20MS, 8000, seq, seq * 20, utterance, last=last)


def send(tracker: PlaybackTracker, frames: list[AudioFrame]) -> list[str]:
    return [name for f in frames if (name := tracker.sent(f)) is not None]


def test_a_mark_every_five_frames_and_after_the_last() -> None:
    tracker = PlaybackTracker(mark_every=5)
    names = send(tracker, [frame(i) for i in range(11)] + [frame(11, last=True)])
    assert len(names) == 3
    assert tracker.pending == 3
    assert [tracker.echoed(n) for n in names] == [
        PlaybackMark("u1", 4, 100),
        PlaybackMark("u1", 9, 200),
        PlaybackMark("u1", 11, 240),
    ]
    assert tracker.all_played


def test_played_ms_counts_per_utterance() -> None:
    tracker = PlaybackTracker(mark_every=2)
    names = send(tracker, [frame(0, "a"), frame(1, "a", last=True), frame(2, "b"), frame(3, "b")])
    marks = [tracker.echoed(n) for n in names]
    assert marks == [PlaybackMark("a", 1, 40), PlaybackMark("b", 3, 40)]


def test_mark_names_encode_the_position_and_are_unique() -> None:
    tracker = PlaybackTracker(mark_every=1)
    first, second = send(tracker, [frame(7, "u9"), frame(7, "u9")])  # a repeated seq
    assert first.startswith("u9:7:20:")
    assert second.startswith("u9:7:40:")
    assert first != second


def test_echoes_of_unknown_or_repeated_marks() -> None:
    tracker = PlaybackTracker(mark_every=1)
    (name,) = send(tracker, [frame(0)])
    assert isinstance(tracker.echoed(name), PlaybackMark)
    assert tracker.echoed(name) is EchoOutcome.UNKNOWN
    assert tracker.echoed("made-up") is EchoOutcome.UNKNOWN


def test_clear_swallows_pending_marks_and_drops_the_cut_utterance() -> None:
    tracker = PlaybackTracker(mark_every=2)
    played, cut = send(tracker, [frame(i) for i in range(4)])
    assert isinstance(tracker.echoed(played), PlaybackMark)
    tracker.clear("u1")
    assert tracker.all_played  # dropped audio will not play: nothing to wait for
    assert tracker.echoed(cut) is EchoOutcome.CLEARED
    assert tracker.echoed(cut) is EchoOutcome.UNKNOWN
    assert not tracker.admit(frame(4, "u1"))
    assert tracker.admit(frame(5, "u2"))
    assert tracker.flush() is None  # frames before the clear need no mark


def test_clear_without_an_utterance_cuts_the_one_last_sent() -> None:
    tracker = PlaybackTracker()
    send(tracker, [frame(0, "u5")])
    tracker.clear(None)
    assert not tracker.admit(frame(1, "u5"))
    assert tracker.admit(frame(2, "u6"))


def test_clear_before_any_audio_cuts_nothing() -> None:
    tracker = PlaybackTracker()
    tracker.clear(None)
    assert tracker.admit(frame(0, None))


def test_flush_marks_frames_sent_since_the_last_mark() -> None:
    tracker = PlaybackTracker(mark_every=5)
    assert tracker.flush() is None
    send(tracker, [frame(0), frame(1)])
    name = tracker.flush()
    assert name is not None
    assert not tracker.all_played
    assert tracker.echoed(name) == PlaybackMark("u1", 1, 40)
    assert tracker.flush() is None


def test_frames_without_an_utterance_still_get_marks() -> None:
    tracker = PlaybackTracker(mark_every=1)
    (name,) = send(tracker, [frame(0, None)])
    mark = tracker.echoed(name)
    assert isinstance(mark, PlaybackMark)
    assert mark.utterance_id == NO_UTTERANCE


def test_mark_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="mark_every"):
        PlaybackTracker(mark_every=0)


def test_inbound_clock_uses_the_providers_numbers() -> None:
    clock = InboundClock()
    assert clock.stamp(1, 5, 20) == (1, 5)
    assert clock.stamp(2, 25, 20) == (2, 25)


def test_inbound_clock_fills_in_missing_numbers() -> None:
    clock = InboundClock()
    assert clock.stamp(None, None, 20) == (0, 0)
    assert clock.stamp(None, None, 20) == (1, 20)
    assert clock.stamp(10, None, 20) == (10, 40)
    assert clock.stamp(None, -1, 20) == (11, 60)
