"""The agent's utterances from synthesis to confirmed playback, on a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from voicebus.contracts.audio import PlaybackMark
from voicebus.media.pacing import MediaClock
from voicebus.media.playback import OutFrame, Playout

pytestmark = pytest.mark.unit

MS = 16  # bytes per ms at 8 kHz


def playout(**kwargs: int) -> Playout:
    kwargs.setdefault("lead_in_ms", None)  # these tests' audio is a constant near-silence
    return Playout(8000, MediaClock(origin=0.0), **kwargs)


def speak(p: Playout, utt: str, chunks: list[tuple[str, int]], *, allow: bool = True) -> None:
    """Chunks of (text, ms of audio), all synthesized, utterance done."""
    for text, ms in chunks:
        p.chunk(utt, text, allow_interruptions=allow, received_at=0.0)
        p.audio(utt, b"\x01" * (ms * MS), now=0.0)
    p.done(utt)


def drain(p: Playout, until: float, step: float = 0.005) -> list[OutFrame]:
    """Everything sent between t=0 and ``until``."""
    frames, now = [], 0.0
    while now <= until:
        frames += p.due(now)[0]
        now += step
    return frames


def test_frames_are_whole_sequenced_and_the_last_is_flagged() -> None:
    p = playout()
    speak(p, "a1", [("Hello there.", 215), ("How are you?", 330)])  # 545 ms → 28 frames
    frames = drain(p, 2.0)
    assert len(frames) == 28
    assert {len(f.pcm) for f in frames} == {320}
    assert [f.seq for f in frames] == list(range(28))
    assert [f.last for f in frames] == [False] * 27 + [True]
    assert [f.first for f in frames] == [True] + [False] * 27
    assert frames[-1].pcm == b"\x01" * (5 * MS) + bytes(320 - 5 * MS)  # 5 ms of audio, padded
    assert all(f.utterance_id == "a1" for f in frames)


def test_sending_keeps_to_real_time_plus_the_lead() -> None:
    p = playout(lead_ms=100)
    speak(p, "a1", [("x", 1000)])
    first, _ = p.due(0.0)
    assert len(first) == 6  # the playing frame + 100 ms of lead
    assert p.due(0.0)[0] == []
    assert p.wait_s(0.0) == pytest.approx(0.02)
    assert len(p.due(0.02)[0]) == 1
    assert len(p.due(0.1)[0]) == 4  # 0.1 s later: four more frames have played
    assert len(p.due(0.9)[0]) == 6  # after a stall, playback restarts with the full lead


def test_timestamps_follow_playback_on_the_media_timeline() -> None:
    p = playout(lead_ms=60)
    speak(p, "a1", [("x", 200)])
    frames = drain(p, 1.0)
    assert [f.ts_ms for f in frames] == [20 * i for i in range(10)]  # plays back to back from 0


def test_started_reports_text_and_first_audio_latency() -> None:
    p = playout()
    p.chunk("a1", "Hi.", allow_interruptions=True, received_at=1.0)
    p.audio("a1", b"\x01" * 640, now=1.25)
    frames, started = p.due(1.3)
    assert len(frames) == 2
    assert len(started) == 1
    assert started[0].utterance_id == "a1"
    assert started[0].text == "Hi."
    assert started[0].first_audio_ms == pytest.approx(250)
    assert p.due(1.3) == ([], [])


def test_a_mark_on_the_last_frame_finishes_the_utterance() -> None:
    p = playout()
    speak(p, "a1", [("One.", 100), ("Two.", 100)])
    frames = drain(p, 1.0)
    assert p.mark(PlaybackMark("a1", frames[4].seq, 100)) is None  # halfway
    assert p.speaking
    done = p.mark(PlaybackMark("a1", frames[-1].seq, 200))
    assert done is not None
    assert (done.utterance_id, done.text, done.played_ms, done.confirmed) == (
        "a1",
        "One. Two.",
        200,
        True,
    )
    assert not p.speaking
    assert p.mark(PlaybackMark("a1", frames[-1].seq, 200)) is None  # repeated: ignored


def test_without_marks_an_utterance_counts_as_played_after_the_grace() -> None:
    p = playout(mark_grace_ms=500, lead_ms=0)
    speak(p, "a1", [("One.", 100)])
    frames = drain(p, 0.2)
    assert frames[-1].last
    assert p.expire(0.5) == []  # played at 0.1 s; grace runs to 0.6 s
    assert p.wait_s(0.5) == pytest.approx(0.1, abs=0.02)
    done = p.expire(0.61)
    assert [(d.utterance_id, d.played_ms, d.confirmed) for d in done] == [("a1", 100, False)]
    assert not p.speaking


def test_marks_of_unknown_utterances_are_ignored() -> None:
    p = playout()
    assert p.mark(PlaybackMark("nope", 3, 60)) is None


def test_utterances_play_in_order_and_seq_runs_on() -> None:
    p = playout()
    speak(p, "a1", [("One.", 100)])
    speak(p, "a2", [("Two.", 60)])
    frames = drain(p, 1.0)
    assert [(f.utterance_id, f.seq, f.last) for f in frames] == [
        ("a1", 0, False), ("a1", 1, False), ("a1", 2, False), ("a1", 3, False), ("a1", 4, True),
        ("a2", 5, False), ("a2", 6, False), ("a2", 7, True),
    ]  # fmt: skip


def test_a_later_utterance_waits_for_the_earlier_one_still_synthesizing() -> None:
    p = playout()
    p.chunk("a1", "Slow.", allow_interruptions=True, received_at=0)
    speak(p, "a2", [("Fast.", 100)])
    assert p.due(0.0)[0] == []  # a1 has no audio yet: nothing jumps the queue
    p.audio("a1", b"\x01" * 320, now=0.0)
    p.done("a1")
    frames = drain(p, 1.0)
    assert [f.utterance_id for f in frames] == ["a1"] + ["a2"] * 5


def test_an_utterance_ending_on_a_frame_boundary_gets_a_silent_last_frame() -> None:
    p = playout()
    p.chunk("a1", "x", allow_interruptions=True, received_at=0)
    p.audio("a1", b"\x01" * 640, now=0)
    sent = drain(p, 0.5)
    assert [f.last for f in sent] == [False, False]  # not known to be last yet
    p.done("a1")
    tail = drain(p, 0.5)
    assert len(tail) == 1
    assert tail[0].last
    assert tail[0].pcm == bytes(320)


def test_an_utterance_with_no_audio_is_dropped_silently() -> None:
    p = playout()
    p.chunk("a1", "", allow_interruptions=True, received_at=0)
    p.done("a1")
    assert not p.speaking
    assert drain(p, 0.5) == []


def test_barge_in_cuts_with_what_the_marks_say_was_heard() -> None:
    p = playout()
    speak(p, "a1", [("Your order shipped.", 600), ("It arrives Monday morning.", 800)])
    drain(p, 0.3)
    p.mark(PlaybackMark("a1", 29, 600))
    p.mark(PlaybackMark("a1", 39, 1000))  # 400 of 800 ms into the second chunk
    cut = p.interrupt(1.0)
    assert len(cut) == 1
    c = cut[0]
    assert c.utterance_id == "a1"
    assert c.text_planned == "Your order shipped. It arrives Monday morning."
    assert c.text_heard == "Your order shipped. It arrives"
    assert c.played_ms == 1000
    assert c.sent_audio
    assert not p.speaking
    assert drain(p, 2.0) == []  # nothing more is sent
    assert p.mark(PlaybackMark("a1", 40, 1020)) is None  # late marks of cut audio: ignored


def test_barge_in_while_still_synthesizing_cuts_everything_pending() -> None:
    p = playout()
    speak(p, "a1", [("Playing now.", 200)])
    drain(p, 0.05)
    p.chunk("a2", "Not yet heard.", allow_interruptions=True, received_at=0)
    cut = p.interrupt(0.1)
    assert [(c.utterance_id, c.text_heard, c.sent_audio) for c in cut] == [
        ("a1", "", True),
        ("a2", "", False),
    ]
    p.audio("a2", b"\x01" * 3200, now=0.2)  # synthesis that was in flight
    p.done("a2")
    assert drain(p, 1.0) == []


def test_no_barge_in_when_the_playing_utterance_forbids_it() -> None:
    p = playout()
    speak(p, "a1", [("Please listen to the end.", 400)], allow=False)
    drain(p, 0.05)
    assert p.interrupt(0.1) == []
    assert p.speaking


def test_no_barge_in_when_silent() -> None:
    p = playout()
    assert p.interrupt(0.0) == []
    speak(p, "a1", [("Hi.", 100)])
    frames = drain(p, 1.0)
    p.mark(PlaybackMark("a1", frames[-1].seq, 100))
    assert p.interrupt(2.0) == []


def test_after_a_barge_in_the_next_utterance_starts_without_lead_debt() -> None:
    p = playout(lead_ms=100)
    speak(p, "a1", [("x", 2000)])
    assert len(p.due(0.0)[0]) == 6
    p.interrupt(0.01)
    speak(p, "a2", [("y", 1000)])
    frames, started = p.due(0.02)
    assert len(frames) == 6  # the provider's buffer was flushed: full lead again
    assert frames[0].first
    assert [s.utterance_id for s in started] == ["a2"]


def test_a_paused_utterance_sends_nothing_and_resumes_with_its_next_frame() -> None:
    p = playout(lead_ms=0)
    speak(p, "a1", [("one two three", 400)])  # 20 frames
    sent = [f.seq for f in p.due(0.0)[0]]
    assert p.interruptible
    assert not p.paused
    p.pause()
    assert p.paused
    assert p.due(1.0) == ([], [])
    assert p.wait_s(1.0) is None  # nothing to wake up for while paused
    p.resume()
    now = 1.0
    while len(sent) < 20:
        sent += [f.seq for f in p.due(now)[0]]
        now += 0.02
    assert sent == list(range(20))  # nothing lost, nothing repeated


def test_a_cut_ends_the_pause() -> None:
    p = playout()
    speak(p, "a1", [("one", 100)])
    p.pause()
    assert [c.utterance_id for c in p.interrupt(0.0)] == ["a1"]
    assert not p.paused
    assert not p.interruptible


def test_the_voices_leading_silence_is_cut_to_the_lead_in_and_later_pauses_stay() -> None:
    p = playout(lead_in_ms=40)
    loud = (np.full(8 * 100, 5000, "<i2")).tobytes()  # 100 ms of sound
    quiet = bytes(16 * 150)  # 150 ms of silence
    p.chunk("a1", "One.", allow_interruptions=True, received_at=0.0)
    p.audio("a1", quiet, now=0.0)  # all silence: held back
    p.audio("a1", quiet + loud + quiet + loud, now=0.0)
    p.done("a1")
    pcm = b"".join(f.pcm for f in drain(p, 2.0))
    samples = np.frombuffer(pcm, "<i2")
    first = int(np.flatnonzero(samples)[0])
    assert first == 8 * 40  # 40 ms of lead-in kept out of 300
    assert len(pcm) == 16 * 400  # 390 ms: the pause between sounds stays (last frame padded)


def test_an_utterance_of_silence_still_plays_less_the_most_that_is_trimmed() -> None:
    p = playout(lead_in_ms=40, max_trim_ms=600)
    p.chunk("a1", "...", allow_interruptions=True, received_at=0.0)
    for _ in range(10):
        p.audio("a1", bytes(16 * 100), now=0.0)  # 1 s of silence in 100 ms pieces
    p.done("a1")
    assert sum(len(f.pcm) for f in drain(p, 2.0)) == 16 * 400


def test_once_everything_was_sent_the_agent_is_no_longer_interruptible() -> None:
    p = playout(lead_ms=1000)
    speak(p, "a1", [("one two", 200)])
    assert p.interruptible
    drain(p, 0.5)  # all ten frames sent; the last plays within the lead
    assert p.speaking
    assert not p.interruptible
