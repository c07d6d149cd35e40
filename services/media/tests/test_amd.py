"""Answering-machine detection: the pure detector, then in a call's pipeline (real VAD)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fakes import FakeSTT, RecordingOutlet
from media_kit import RATE, Harness, frames_of, silence, until

from voicebus.contracts.events import AmdMethod, AmdResult
from voicebus.media.amd import AmdDecision, BeepDetector, MachineDetector

FRAME = 320  # bytes: 20 ms at 8 kHz


def tone(ms: int, hz: float = 1000.0, level: float = 8000.0) -> bytes:
    t = np.arange(RATE * ms // 1000) / RATE
    return (np.sin(2 * math.pi * hz * t) * level).astype("<i2").tobytes()


def noise(ms: int, level: float = 3000.0) -> bytes:
    rng = np.random.default_rng(7)
    return (rng.normal(0, level, RATE * ms // 1000)).clip(-32000, 32000).astype("<i2").tobytes()


def run(detector: MachineDetector, pcm: bytes, start_ms: int = 0) -> list[tuple[int, AmdDecision]]:
    """Feed 20 ms frames; (end ms, decision) for each decision."""
    out: list[tuple[int, AmdDecision]] = []
    for i in range(0, len(pcm), FRAME):
        end = start_ms + (i + FRAME) // 16
        out += [(end, d) for d in detector.audio(pcm[i : i + FRAME], end)]
    return out


@pytest.mark.unit
def test_a_steady_tone_is_a_beep_and_speech_or_noise_never_is(speech: dict[str, bytes]) -> None:
    beep = BeepDetector(RATE, 160)
    ends = [beep.frame(f) for f in _frames(tone(400) + silence(100))]
    assert ends.count(True) == 1
    assert ends.index(True) == 20  # the first frame after the 400 ms tone
    for sound in (speech["order"], speech["thanks"], noise(2000), tone(100) + silence(100)):
        quiet = BeepDetector(RATE, 160)
        assert not any(quiet.frame(f) for f in _frames(sound)), "not a beep"


def _frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]


@pytest.mark.unit
def test_a_short_hello_then_silence_is_a_person() -> None:
    d = MachineDetector(RATE)
    run(d, silence(400))
    d.speech_started()
    run(d, noise(600), 400)
    d.speech_stopped(300)  # the VAD stop comes 300 ms after the speech ended
    decisions = run(d, silence(1500), 1000)
    assert len(decisions) == 1
    at, decision = decisions[0]
    assert (decision.result, decision.method) == (AmdResult.HUMAN, AmdMethod.GREETING)
    assert at <= 2000
    assert d.finished


@pytest.mark.unit
def test_a_long_greeting_is_a_machine_within_three_seconds_then_its_beep_ends_it() -> None:
    d = MachineDetector(RATE)
    run(d, silence(300))
    d.speech_started()
    decisions = run(d, noise(4000), 300)
    assert [(r.result, r.method) for _, r in decisions] == [(AmdResult.MACHINE, AmdMethod.GREETING)]
    assert decisions[0][0] <= 2900
    d.speech_stopped(300)
    after = run(d, silence(300) + tone(500) + silence(200), 4300)
    assert [(r.result, r.method) for _, r in after] == [
        (AmdResult.MACHINE_END_BEEP, AmdMethod.BEEP)
    ]
    assert after[0][0] == 4300 + 300 + 500 + 20  # right after the beep, not during it


@pytest.mark.unit
def test_voicemail_words_decide_and_a_greeting_without_beep_ends_on_silence() -> None:
    d = MachineDetector(RATE)
    d.speech_started()
    run(d, noise(1000))
    assert [r.method for r in d.transcript("Please leave a message")] == [AmdMethod.TRANSCRIPT]
    d.speech_stopped(300)
    ended = run(d, silence(4000), 1000)
    assert [(r.result, r.method) for _, r in ended] == [
        (AmdResult.MACHINE_END_BEEP, AmdMethod.SILENCE)
    ]


@pytest.mark.unit
def test_silence_until_the_deadline_is_unknown() -> None:
    d = MachineDetector(RATE)
    decisions = run(d, silence(3500))
    assert [(r.result, at) for at, r in decisions] == [(AmdResult.UNKNOWN, 2900)]


@pytest.mark.component
async def test_in_the_pipeline_a_spoken_greeting_and_beep_give_machine_then_end_beep(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    stt = FakeSTT(["Hi, you have reached Sam. Please leave a message after the tone."])
    pipeline = await harness.start(out, stt=stt, amd=True)
    greeting = speech["order"] + speech["thanks"] + speech["order"]  # ~5 s of talk
    for frame in frames_of(silence(300) + greeting + silence(400) + tone(500) + silence(1500)):
        await pipeline.audio(frame)
    await until(lambda: len(out.of("amd.detected")) == 2)
    first, beep = (e.data for e in out.of("amd.detected"))
    assert (first.result, first.detector) == (AmdResult.MACHINE, "media")  # type: ignore[attr-defined]
    assert first.method in (AmdMethod.GREETING, AmdMethod.CADENCE)  # type: ignore[attr-defined]
    assert first.detection_ms <= 3000  # type: ignore[attr-defined]
    assert first.confidence is not None  # type: ignore[attr-defined]
    assert (beep.result, beep.method) == (AmdResult.MACHINE_END_BEEP, AmdMethod.BEEP)  # type: ignore[attr-defined]
    assert beep.detection_ms >= (300 + len(greeting) // 16 + 400 + 500)  # type: ignore[attr-defined]


@pytest.mark.component
async def test_in_the_pipeline_hello_and_silence_is_a_person(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    pipeline = await harness.start(out, stt=FakeSTT(["Hello?"]), amd=True)
    onset = RATE * 2 * 6 // 10
    hello = speech["thanks"][onset : onset + 16 * 700]
    for frame in frames_of(silence(500) + hello + silence(2500)):
        await pipeline.audio(frame)
    await until(lambda: bool(out.of("amd.detected")))
    (decided,) = (e.data for e in out.of("amd.detected"))
    assert (decided.result, decided.method) == (AmdResult.HUMAN, AmdMethod.GREETING)  # type: ignore[attr-defined]
    assert decided.detection_ms <= 3000  # type: ignore[attr-defined]
