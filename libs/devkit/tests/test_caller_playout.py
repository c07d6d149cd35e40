"""The caller's pure parts: playout (Twilio's mark and clear rules), lines and the timeline."""

from __future__ import annotations

import pytest

from voicebus.devkit.caller.audio import FRAME_SAMPLES, silence, tone
from voicebus.devkit.caller.errors import CallClosedError
from voicebus.devkit.caller.lines import SILENT_FRAME, LineQueue
from voicebus.devkit.caller.playout import Playout
from voicebus.devkit.caller.timeline import Timeline

pytestmark = pytest.mark.unit

FRAME = FRAME_SAMPLES


def test_mark_is_echoed_only_once_the_audio_before_it_has_played() -> None:
    playout = Playout()
    playout.push_audio(bytes(2 * FRAME * 3))
    assert playout.push_mark("m1") == []
    assert playout.play().marks == []
    assert playout.play().marks == []
    last = playout.play()
    assert last.marks == ["m1"]
    assert last.audio_samples == FRAME
    assert playout.pending_marks == 0


def test_audio_after_a_mark_does_not_delay_it() -> None:
    playout = Playout()
    playout.push_audio(bytes(2 * FRAME))
    playout.push_mark("m1")
    playout.push_audio(bytes(2 * FRAME * 10))
    assert playout.play().marks == ["m1"]


def test_mark_on_an_empty_buffer_is_echoed_at_once() -> None:
    playout = Playout()
    assert playout.push_mark("m0") == ["m0"]
    playout.push_audio(bytes(2 * FRAME))
    playout.play()
    assert playout.push_mark("m1") == ["m1"]


def test_marks_are_echoed_in_order_within_a_tick() -> None:
    playout = Playout()
    playout.push_audio(bytes(2 * 50))
    playout.push_mark("a")
    playout.push_audio(bytes(2 * 50))
    playout.push_mark("b")
    played = playout.play()
    assert played.marks == ["a", "b"]
    assert played.audio_samples == 100
    assert len(played.pcm) == 2 * FRAME  # padded to a full tick


def test_clear_drops_audio_and_echoes_pending_marks() -> None:
    playout = Playout()
    playout.push_audio(bytes(2 * FRAME * 5))
    playout.push_mark("m1")
    playout.push_audio(bytes(2 * FRAME * 5))
    playout.push_mark("m2")
    playout.play()
    assert playout.clear() == ["m1", "m2"]
    assert playout.pending_samples == 0
    after = playout.play()
    assert after.audio_samples == 0
    assert after.marks == []
    assert playout.consumed == playout.appended


def test_audio_received_after_clear_plays() -> None:
    playout = Playout()
    playout.push_audio(bytes(2 * FRAME * 5))
    playout.clear()
    playout.push_audio(tone(20))
    played = playout.play()
    assert played.audio_samples == FRAME
    assert played.start_index == 5 * FRAME


def test_odd_pcm_is_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        Playout().push_audio(b"\x00")


def test_turn_latency_is_end_of_speech_to_first_audible_reply() -> None:
    timeline = Timeline()
    playout = Playout()
    turn = timeline.begin_turn("hello", barge_in=False)
    assert turn.started_ms == 0
    timeline.end_turn(turn, offset_samples=80, reply_from=playout.appended)  # ends at 10 ms
    for _ in range(10):  # 200 ms of silence from the agent
        assert timeline.tick(bytes(2 * FRAME), playout.play()) == []
    playout.push_audio(silence(10) + tone(100))  # leading quiet is not "audio heard"
    answered = timeline.tick(bytes(2 * FRAME), playout.play())
    assert answered == [turn]
    assert turn.ended_ms == 10
    assert turn.first_agent_audio_ms is not None
    assert 210 <= turn.first_agent_audio_ms <= 212
    assert turn.latency_ms == turn.first_agent_audio_ms - 10


def test_audio_received_before_the_end_of_speech_is_not_the_reply() -> None:
    timeline = Timeline()
    playout = Playout()
    playout.push_audio(tone(60))  # still playing when the caller stops talking
    turn = timeline.begin_turn(None, barge_in=True)
    timeline.end_turn(turn, offset_samples=0, reply_from=playout.appended)
    for _ in range(3):
        timeline.tick(bytes(2 * FRAME), playout.play())
    assert turn.first_agent_audio_ms is None
    playout.push_audio(tone(40))
    assert timeline.tick(bytes(2 * FRAME), playout.play()) == [turn]
    assert turn.first_agent_audio_ms is not None
    assert 60 <= turn.first_agent_audio_ms < 62  # the tone fades in over its first samples


def test_heard_spans_merge_contiguous_audio() -> None:
    timeline = Timeline()
    playout = Playout()
    playout.push_audio(tone(50))
    for _ in range(5):
        timeline.tick(bytes(2 * FRAME), playout.play())
    playout.push_audio(tone(20))
    timeline.tick(bytes(2 * FRAME), playout.play())
    assert timeline.heard_spans == [(0.0, 50.0), (100.0, 120.0)]
    assert timeline.heard_samples == 70 * 8
    assert len(timeline.heard) == len(timeline.said) == 6 * 2 * FRAME
    assert timeline.last_heard_ms == 120.0


async def test_a_line_is_spoken_frame_by_frame_and_ends_at_its_last_sound() -> None:
    lines, timeline, playout = LineQueue(), Timeline(), Playout()
    done = lines.add(tone(50) + silence(45), "hi")  # 95 ms: 5 frames, sound ends at 50 ms
    sent = []
    for _ in range(6):
        sent.append(lines.next_frame(timeline, playout))
        timeline.tick(sent[-1], playout.play())
        lines.frame_sent()
    assert sent[-1] == SILENT_FRAME  # nothing left to say
    turn = await done
    assert turn.text == "hi"
    assert turn.started_ms == 0
    assert turn.ended_ms is not None
    assert 48 <= turn.ended_ms <= 50
    assert not turn.barge_in


async def test_a_line_started_over_agent_audio_is_a_barge_in() -> None:
    lines, timeline, playout = LineQueue(), Timeline(), Playout()
    playout.push_audio(tone(200))
    timeline.tick(SILENT_FRAME, playout.play())
    done = lines.add(tone(20), None)
    timeline.tick(lines.next_frame(timeline, playout), playout.play())
    lines.frame_sent()
    assert (await done).barge_in


async def test_unfinished_lines_fail_when_the_call_ends() -> None:
    lines, timeline, playout = LineQueue(), Timeline(), Playout()
    done = lines.add(tone(100), "bye")
    lines.next_frame(timeline, playout)
    lines.abandon()
    with pytest.raises(CallClosedError):
        await done
