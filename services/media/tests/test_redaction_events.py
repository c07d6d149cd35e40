"""An agent's redaction reaches every text media publishes about the call."""

from __future__ import annotations

from voicebus.contracts.events import TranscriptFinalData
from voicebus.contracts.redaction import Kind, RedactionSettings
from voicebus.media.events import CallEvents
from voicebus.media.playback import Finished, Interrupted, Started

CARD = "it is 4111 1111 1111 1111"


def test_transcripts_and_agent_speech_are_redacted() -> None:
    events = CallEvents("acme", "c1", "media/m1", RedactionSettings(kinds=[Kind.CARD]))
    final = events.transcript(
        TranscriptFinalData(utterance_id="u1", text=CARD, start_ms=0, end_ms=900)
    )
    assert final.data.text == "it is [card]"
    assert events.partial("u1", CARD).data.text == "it is [card]"
    assert events.agent_started(Started("a1", CARD, 120)).data.text == "it is [card]"
    assert events.agent_stopped(Finished("a1", CARD, 900, True)).data.text == "it is [card]"
    cut = events.agent_interrupted(Interrupted("a1", CARD + " right?", CARD, 800, True))
    assert (cut.data.text_planned, cut.data.text_heard) == ("it is [card] right?", "it is [card]")


def test_without_redaction_the_text_is_as_said() -> None:
    events = CallEvents("acme", "c1", "media/m1")
    data = TranscriptFinalData(utterance_id="u1", text=CARD, start_ms=0, end_ms=900)
    assert events.transcript(data).data.text == CARD
