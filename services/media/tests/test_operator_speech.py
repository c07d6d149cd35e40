"""The operator's speech cut into lines from the VAD's states (pure), and the line's event."""

from __future__ import annotations

import pytest
from pipecat.audio.vad.vad_analyzer import VADState

from voicebus.contracts.redaction import Kind, RedactionSettings
from voicebus.media.events import MAX_HUMAN_LINE, CallEvents
from voicebus.media.operator_speech import Cut, SpeechCutter

pytestmark = pytest.mark.unit

Q, ST, SP, STOP = VADState.QUIET, VADState.STARTING, VADState.SPEAKING, VADState.STOPPING


def frame(n: int) -> bytes:
    return bytes([n]) * 10


def run(cutter: SpeechCutter, states: list[VADState]) -> list[Cut]:
    return [cutter.feed(frame(n), state) for n, state in enumerate(states)]


def test_a_line_opens_on_confirmed_speech_with_the_audio_just_before_it() -> None:
    cutter = SpeechCutter(preroll_bytes=20, max_line_bytes=10_000)
    cuts = run(cutter, [Q, Q, ST, ST, SP])
    assert [c.audio for c in cuts[:4]] == [b""] * 4  # nothing before the VAD confirms
    assert cuts[4] == Cut(frame(2) + frame(3) + frame(4))  # two frames of preroll kept
    assert cutter.open


def test_a_line_goes_on_through_a_pause_and_ends_on_confirmed_silence() -> None:
    cutter = SpeechCutter(preroll_bytes=0, max_line_bytes=10_000)
    cuts = run(cutter, [SP, STOP, SP, STOP, Q, Q])
    assert [c.ends for c in cuts] == [False, False, False, False, True, False]
    assert b"".join(c.audio for c in cuts) == b"".join(frame(n) for n in range(5))
    assert not cutter.open


def test_a_long_line_is_cut_and_the_next_opens_while_speech_goes_on() -> None:
    cutter = SpeechCutter(preroll_bytes=0, max_line_bytes=30)
    cuts = run(cutter, [SP, SP, SP, SP, SP])
    assert [c.ends for c in cuts] == [False, False, True, False, False]
    assert cuts[3].audio == frame(3)


def test_finish_reports_an_open_line_once() -> None:
    cutter = SpeechCutter(preroll_bytes=0, max_line_bytes=10_000)
    assert cutter.finish() is False
    run(cutter, [SP])
    assert cutter.finish() is True
    assert cutter.finish() is False


def test_the_spoken_line_is_redacted_clipped_and_marked_as_speech() -> None:
    events = CallEvents("acme", "c1", "media/m1", RedactionSettings(kinds=[Kind.CARD]))
    said = events.human_said("key-1", "card 4111 1111 1111 1111 " + "x" * 3000)
    assert said.type == "supervision.human_said.v1"
    assert said.data.operator == "key-1"
    assert said.data.via == "speech"
    assert said.data.text.startswith("card [card] x")
    assert len(said.data.text) == MAX_HUMAN_LINE
