"""Plivo and Vobiz stream codecs: provider messages in, normalized events out, and back."""

from __future__ import annotations

import base64
import json

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
from voicebus.gateway.providers.plivo.stream import (
    PlivoCodec,
    PlivoStyleCodec,
    token_from_headers,
    token_header,
)
from voicebus.gateway.providers.vobiz.stream import VobizCodec
from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16


def utf8(text: str | bytes) -> bytes:
    """A text message as the socket hands it to the codec: UTF-8 bytes."""
    return text.encode() if isinstance(text, str) else text


pytestmark = pytest.mark.unit

STREAM = "87654321-4321-4321-4321-cba987654321"
CALL = "12345678-1234-1234-1234-123456789abc"


def start(encoding: str = "audio/x-mulaw", rate: int = 8000) -> str:
    return json.dumps({
        "event": "start", "sequenceNumber": 1,
        "start": {"callId": CALL, "streamId": STREAM, "accountId": "MA1", "tracks": ["inbound"],
                  "mediaFormat": {"encoding": encoding, "sampleRate": rate}},
        "extra_headers": "",
    })  # fmt: skip


def media(audio: bytes, chunk: int = 1, ts: int = 1705312200000, track: str = "inbound") -> str:
    return json.dumps({
        "event": "media", "sequenceNumber": chunk + 1, "streamId": STREAM,
        "media": {"track": track, "timestamp": str(ts), "chunk": chunk,
                  "payload": base64.b64encode(audio).decode()},
    })  # fmt: skip


def started(codec: PlivoStyleCodec, text: str | None = None) -> StreamStart:
    event = codec.parse(utf8(text or start()))
    assert isinstance(event, StreamStart)
    codec.bind(event)
    return event


@pytest.mark.parametrize("codec", [PlivoCodec(), VobizCodec()])
def test_start_carries_the_ids_and_no_parameters(codec: PlivoStyleCodec) -> None:
    event = started(codec)
    assert (event.stream_id, event.provider_call_id, dict(event.parameters)) == (STREAM, CALL, {})
    assert codec.sample_rate == 8000


def test_mulaw_media_is_decoded_with_stream_relative_timestamps() -> None:
    codec = PlivoCodec()
    started(codec)
    ulaw = bytes(range(160))
    first = codec.parse(utf8(media(ulaw, chunk=1, ts=1705312200000)))
    second = codec.parse(utf8(media(ulaw, chunk=2, ts=1705312200020)))
    assert first == MediaIn(ulaw_to_pcm16(ulaw), 1, 0)
    assert second == MediaIn(ulaw_to_pcm16(ulaw), 2, 20)


def test_l16_at_16k_passes_through_and_plays_back_as_l16() -> None:
    codec = VobizCodec()
    started(codec, start("audio/x-l16", 16000))
    assert codec.sample_rate == 16000
    pcm = bytes(range(256)) * 2 + bytes(128)  # 320 samples: 20 ms at 16 kHz
    assert codec.parse(utf8(media(pcm))) == MediaIn(pcm, 1, 0)
    out = json.loads(codec.media(pcm))
    assert out["media"]["contentType"] == "audio/x-l16"
    assert out["media"]["sampleRate"] == 16000
    assert base64.b64decode(out["media"]["payload"]) == pcm


def test_outbound_messages_name_the_stream() -> None:
    codec = PlivoCodec()
    started(codec)
    pcm = bytes([1, 0]) * 160
    play = json.loads(codec.media(pcm))
    assert play == {
        "event": "playAudio",
        "streamId": STREAM,
        "media": {
            "contentType": "audio/x-mulaw",
            "sampleRate": 8000,
            "payload": base64.b64encode(pcm16_to_ulaw(pcm)).decode(),
        },
    }
    assert json.loads(codec.mark('u1:4:"100"')) == {
        "event": "checkpoint",
        "streamId": STREAM,
        "name": 'u1:4:"100"',
    }
    assert json.loads(codec.clear()) == {"event": "clearAudio", "streamId": STREAM}


@pytest.mark.parametrize("codec", [PlivoCodec(), VobizCodec()])
def test_control_events(codec: PlivoStyleCodec) -> None:
    started(codec)
    played = {"event": "playedStream", "streamId": STREAM, "name": "m1"}
    assert codec.parse(utf8(json.dumps(played))) == MarkPlayed("m1")
    dtmf = {"event": "dtmf", "streamId": STREAM, "dtmf": {"digit": "5", "track": "inbound"}}
    assert codec.parse(utf8(json.dumps(dtmf))) == DtmfIn("5")
    cleared = {"event": "clearedAudio", "streamId": STREAM, "sequenceNumber": 9}
    assert codec.parse(utf8(json.dumps(cleared))) == StreamInfo()


def test_plivo_stops_and_vobiz_has_no_stop_event() -> None:
    stop = json.dumps({"event": "stop", "streamId": STREAM})
    assert PlivoCodec().parse(utf8(stop)) == StreamStop()
    assert VobizCodec().parse(utf8(stop)) == Ignored(IgnoreReason.UNKNOWN_EVENT)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", IgnoreReason.MALFORMED_JSON),
        ("[1, 2]", IgnoreReason.INVALID_MESSAGE),
        ('{"event": 3}', IgnoreReason.INVALID_MESSAGE),
        ('{"event": "hello"}', IgnoreReason.UNKNOWN_EVENT),
        ('{"event": "start", "start": {}}', IgnoreReason.INVALID_MESSAGE),
        ('{"event": "media", "media": {"payload": "***"}}', IgnoreReason.INVALID_MESSAGE),
        ('{"event": "media", "media": {"payload": ""}}', IgnoreReason.INVALID_MESSAGE),
        (media(bytes(160), track="outbound"), IgnoreReason.UNEXPECTED_TRACK),
        (media(bytes(8001)), IgnoreReason.OVERSIZE),
        ('{"event": "dtmf", "dtmf": {"digit": "12"}}', IgnoreReason.INVALID_MESSAGE),
        ('{"event": "playedStream", "streamId": "s"}', IgnoreReason.INVALID_MESSAGE),
    ],
)
def test_bad_messages_are_ignored_with_a_reason(text: str, reason: IgnoreReason) -> None:
    codec = PlivoCodec()
    started(codec)
    assert codec.parse(utf8(text)) == Ignored(reason)


def test_odd_l16_payload_is_invalid() -> None:
    codec = PlivoCodec()
    started(codec, start("audio/x-l16", 8000))
    assert codec.parse(utf8(media(bytes(3)))) == Ignored(IgnoreReason.INVALID_MESSAGE)


def test_the_token_rides_in_extra_headers_and_comes_back_in_start() -> None:
    token = "1800000000." + "ab" * 32
    header = token_header(token)
    assert header.replace("=", "").isalnum()  # Plivo allows only letters and digits
    assert token_from_headers(header) == {"vb_token": token}
    assert token_from_headers(f"userId=12;{header}") == {"vb_token": token}
    assert token_from_headers("vbtoken=notatoken") == {}
    assert token_from_headers(None) == {}
    text = json.dumps({"event": "start", "start": {"streamId": STREAM}, "extra_headers": header})
    event = PlivoCodec().parse(utf8(text))
    assert isinstance(event, StreamStart)
    assert event.parameters == {"vb_token": token}
