"""Live supervision's pure core: the operator's commands and microphone frames."""

from __future__ import annotations

import json

import pytest

from voicebus.contracts.audio import decode_frame
from voicebus.contracts.events import (
    SupervisionHandedBack,
    SupervisionHumanSaid,
    SupervisionTakenOver,
    SupervisionWhispered,
)
from voicebus.edge.api.supervision import SupervisionError, Supervisor

pytestmark = pytest.mark.unit


def supervisor() -> Supervisor:
    return Supervisor("acme", "c1", "k1", "edge/e-1")


def test_a_whisper_carries_the_operator_and_the_note() -> None:
    event = supervisor().command(json.dumps({"type": "whisper", "note": " Offer 10% off. "}))
    assert isinstance(event, SupervisionWhispered)
    assert (event.tenant_id, event.call_id, event.data.operator) == ("acme", "c1", "k1")
    assert event.data.note == "Offer 10% off."
    assert event.subject == "vb.evt.acme.c1.supervision.whispered"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json", "JSON object"),
        ("[1]", "JSON object"),
        ('{"type": "shout"}', "type: one of"),
        ('{"type": "whisper"}', "note: a string is required"),
        ('{"type": "whisper", "note": ""}', "whisper: note:"),
        ('{"type": "said", "text": "hi"}', "take the call over first"),
        ('{"type": "hand_back"}', "not taken over"),
        ('{"type": "take_over"}', "no audio of the call"),
    ],
)
def test_bad_commands_are_refused_naming_what_was_wrong(raw: str, says: str) -> None:
    with pytest.raises(SupervisionError, match=says):
        supervisor().command(raw)


def test_take_over_speak_say_and_hand_back() -> None:
    s = supervisor()
    with pytest.raises(SupervisionError, match="take the call over"):
        s.microphone(b"\0\0" * 160)
    assert s.heard(8000)
    assert not s.heard(8000)
    taken = s.command('{"type": "take_over"}')
    assert isinstance(taken, SupervisionTakenOver)
    with pytest.raises(SupervisionError, match="already taken over"):
        s.command('{"type": "take_over"}')
    frames = [s.microphone(b"\1\0" * 160) for _ in range(2)]
    decoded = [decode_frame(f.pcm, f.headers) for f in frames]
    assert [(d.sample_rate, d.seq, d.ts_ms) for d in decoded] == [(8000, 0, 0), (8000, 1, 20)]
    assert {d.utterance_id for d in decoded} == {taken.data.utterance_id}
    with pytest.raises(SupervisionError, match="whole samples"):
        s.microphone(b"\1")
    said = s.command('{"type": "said", "text": "Hi, Sam here."}')
    assert isinstance(said, SupervisionHumanSaid)
    back = s.command('{"type": "hand_back"}')
    assert isinstance(back, SupervisionHandedBack)
    assert back.data.operator == "k1"
    assert s.hand_back() is None  # closing the page after a hand-back hands nothing back
    with pytest.raises(SupervisionError):
        s.microphone(b"\0\0" * 160)
