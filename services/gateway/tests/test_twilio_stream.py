"""Twilio Media Streams messages: parsing into normalized events, building outbound messages."""

from __future__ import annotations

import base64
import json
import os

import pytest

from voicebus.gateway.metrics import IgnoreReason
from voicebus.gateway.providers.base import (
    DtmfIn,
    Ignored,
    MarkPlayed,
    MediaIn,
    StreamInfo,
    StreamStart,
    StreamStop,
)
from voicebus.gateway.providers.twilio.stream import TwilioCodec, parse_message
from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16


def utf8(text: str | bytes) -> bytes:
    """A text message as the socket hands it to the codec: UTF-8 bytes."""
    return text.encode() if isinstance(text, str) else text


pytestmark = pytest.mark.unit

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"


def message(event: str, **body: object) -> str:
    return json.dumps({"event": event, "sequenceNumber": "2", "streamSid": SID, **body})


def media(audio: bytes, **fields: object) -> str:
    chunk = {"track": "inbound", "chunk": "3", "timestamp": "45",
             "payload": base64.b64encode(audio).decode(), **fields}  # fmt: skip
    return message("media", media=chunk)


def test_media_is_decoded_to_pcm16() -> None:
    ulaw = os.urandom(160)
    event = TwilioCodec().parse(utf8(media(ulaw)))
    assert event == MediaIn(ulaw_to_pcm16(ulaw), 3, 45)
    assert isinstance(event, MediaIn)
    assert len(event.pcm) == 320


def test_media_without_chunk_or_timestamp_leaves_them_to_the_session() -> None:
    text = json.dumps({"event": "media", "media": {"payload": base64.b64encode(b"\xff").decode()}})
    assert TwilioCodec().parse(utf8(text)) == MediaIn(ulaw_to_pcm16(b"\xff"), None, None)


def test_start_carries_ids_and_custom_parameters() -> None:
    start = {
        "streamSid": SID,
        "accountSid": "AC1",
        "callSid": "CA1",
        "tracks": ["inbound"],
        "customParameters": {"call_id": "c1", "agent_id": "demo"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    event = TwilioCodec().parse(utf8(message("start", start=start)))
    assert event == StreamStart(SID, "CA1", {"call_id": "c1", "agent_id": "demo"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (message("mark", mark={"name": "u1:4:100:1"}), MarkPlayed("u1:4:100:1")),
        (message("dtmf", dtmf={"track": "inbound_track", "digit": "#"}), DtmfIn("#")),
        (message("stop", stop={"accountSid": "AC1", "callSid": "CA1"}), StreamStop()),
        (json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}), StreamInfo()),
    ],
)
def test_other_messages(text: str, expected: object) -> None:
    assert TwilioCodec().parse(utf8(text)) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", IgnoreReason.MALFORMED_JSON),
        ("", IgnoreReason.MALFORMED_JSON),
        ("[]", IgnoreReason.INVALID_MESSAGE),
        ('{"no_event": 1}', IgnoreReason.INVALID_MESSAGE),
        ('{"event": 7}', IgnoreReason.INVALID_MESSAGE),
        (message("transcript", text="hi"), IgnoreReason.UNKNOWN_EVENT),
        (message("media", media={"chunk": "1"}), IgnoreReason.INVALID_MESSAGE),
        (message("mark", mark={}), IgnoreReason.INVALID_MESSAGE),
        (message("dtmf", dtmf={"digit": "12"}), IgnoreReason.INVALID_MESSAGE),
        (
            message(
                "start",
                start={
                    "streamSid": SID,
                    "mediaFormat": {"encoding": "audio/l16", "sampleRate": 16000},
                },
            ),
            IgnoreReason.INVALID_MESSAGE,
        ),
        (media(b"\x00" * 8001), IgnoreReason.OVERSIZE),
        (media(b""), IgnoreReason.INVALID_MESSAGE),
        (media(b"\x00" * 10, track="outbound"), IgnoreReason.UNEXPECTED_TRACK),
        (media(b"\x00" * 10, payload="not base64!"), IgnoreReason.INVALID_MESSAGE),
        (media(b"\x00" * 10, chunk="first"), IgnoreReason.INVALID_MESSAGE),
    ],
)
def test_bad_messages_are_ignored_with_a_reason(text: str, reason: IgnoreReason) -> None:
    assert TwilioCodec().parse(utf8(text)) == Ignored(reason)


def test_parse_message_keeps_the_typed_model() -> None:
    parsed = parse_message(message("mark", mark={"name": "m"}))
    assert type(parsed).__name__ == "MarkMessage"
    assert parsed.stream_sid == SID  # type: ignore[union-attr]  # narrowed by the line above


def bound() -> TwilioCodec:
    codec = TwilioCodec()
    codec.bind(StreamStart(SID, "CA1"))
    return codec


def test_outbound_media_is_ulaw_base64_for_the_stream() -> None:
    pcm = os.urandom(320)
    out = json.loads(bound().media(pcm))
    assert out == {"event": "media", "streamSid": SID,
                   "media": {"payload": base64.b64encode(pcm16_to_ulaw(pcm)).decode()}}  # fmt: skip


def test_outbound_mark_and_clear() -> None:
    codec = bound()
    assert json.loads(codec.mark('u"1:2')) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": 'u"1:2'},
    }
    assert json.loads(codec.clear()) == {"event": "clear", "streamSid": SID}


def test_outbound_messages_round_trip_through_the_parser() -> None:
    codec = bound()
    echoed = json.loads(codec.mark("u1:4:100:1"))
    assert codec.parse(utf8(json.dumps(echoed))) == MarkPlayed("u1:4:100:1")
