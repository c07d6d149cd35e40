"""Frame slicing, real-time pacing with a lead, and the media clock."""

from __future__ import annotations

import pytest

from voicebus.media.pacing import FrameSlicer, MediaClock, Pacer, audio_ms, bytes_per_ms

pytestmark = pytest.mark.unit


def test_slicer_cuts_whole_frames_and_keeps_the_rest() -> None:
    s = FrameSlicer(320)
    assert s.push(b"\x01" * 100) == []
    frames = s.push(b"\x02" * 600)  # 700 bytes held: two frames, 60 left
    assert [len(f) for f in frames] == [320, 320]
    assert frames[0] == b"\x01" * 100 + b"\x02" * 220
    assert s.pending_bytes == 60
    tail = s.flush()
    assert tail == b"\x02" * 60 + bytes(260)
    assert s.flush() is None


def test_slicer_refuses_odd_frame_sizes() -> None:
    with pytest.raises(ValueError, match="PCM16"):
        FrameSlicer(321)


def test_audio_durations_at_8_khz() -> None:
    assert bytes_per_ms(8000) == 16
    assert audio_ms(320, 8000) == 20
    assert audio_ms(48_000, 24000) == 1000


def test_pacer_bursts_the_lead_then_one_frame_per_frame_time() -> None:
    p = Pacer(frame_ms=20, lead_ms=100)
    now = 10.0
    sent = 0
    while p.wait_s(now) == 0:
        p.sent(now)
        sent += 1
    assert sent == 6  # 0..100 ms buffered: the playing frame + 100 ms of lead
    assert p.wait_s(now) == pytest.approx(0.02)
    now += 0.02
    assert p.wait_s(now) == 0
    p.sent(now)
    assert p.wait_s(now) == pytest.approx(0.02)


def test_pacer_never_exceeds_the_lead_when_sending_as_allowed() -> None:
    p = Pacer(frame_ms=20, lead_ms=160)
    now, step, sent_s = 0.0, 0.007, 0.0
    for _ in range(2000):
        while p.wait_s(now) == 0:
            p.sent(now)
            sent_s += 0.02
        assert p.buffered_s(now) <= 0.16 + 0.02 + 1e-9  # the frame playing + the lead
        now += step
    assert sent_s == pytest.approx(now + 0.16, abs=0.03)  # real time, plus the lead


def test_pacer_restarts_after_the_buffer_ran_dry() -> None:
    p = Pacer(frame_ms=20, lead_ms=0)
    assert p.sent(1.0) == 1.0
    assert p.sent(1.0) == pytest.approx(1.02)  # queued behind the first
    assert p.drained(1.05)
    assert p.sent(5.0) == 5.0  # starts playing when sent: nothing was queued


def test_pacer_clear_drops_what_was_queued() -> None:
    p = Pacer(frame_ms=20, lead_ms=200)
    for _ in range(10):
        p.sent(0.0)
    assert p.buffered_s(0.05) == pytest.approx(0.15)
    p.clear(0.05)
    assert p.buffered_s(0.05) == 0
    assert p.sent(0.05) == 0.05


def test_pacer_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="frame_ms"):
        Pacer(frame_ms=0)


def test_media_clock_before_and_after_caller_frames() -> None:
    clock = MediaClock(origin=100.0)
    assert clock.media_ms(101.5) == 1500  # since the call started
    assert not clock.anchored
    clock.observe(ts_ms=40, now=103.0)  # the provider's clock is behind ours
    assert clock.anchored
    assert clock.media_ms(103.0) == 40
    clock.observe(ts_ms=1060, now=104.0)  # arrived with less delay: better offset
    assert clock.media_ms(104.0) == 1060
    clock.observe(ts_ms=1080, now=104.5)  # late frame: ignored
    assert clock.media_ms(104.5) == 1560
    assert MediaClock(origin=10.0).media_ms(0.0) == 0  # never negative
