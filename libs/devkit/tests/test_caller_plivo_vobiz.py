"""The simulated Plivo and Vobiz callers' protocol pieces (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from plivo.utils import validate_v3_signature

from voicebus.devkit.caller import plivo, vobiz
from voicebus.devkit.caller.protocol import (
    ProtocolError,
    ServerClear,
    ServerMark,
    ServerMedia,
    StreamIds,
)
from voicebus.runtime.codecs import pcm16_to_ulaw

pytestmark = pytest.mark.unit

URL = "https://voice.example.com/telephony/plivo/inbound/demo?ctx_a=1"
FORM = {"CallUUID": "c1", "From": "+14155550100", "To": "+14155550199"}
IDS = StreamIds("MA0123456789ABCDEF01", "call-1", "stream-1")


def test_plivo_signature_is_what_the_sdk_validates() -> None:
    nonce = plivo.new_nonce()
    assert len(nonce) == 20
    assert nonce.isdigit()
    signature = plivo.sign("token", URL, FORM, nonce)
    assert validate_v3_signature("POST", URL, nonce, "token", signature, dict(FORM))
    assert not validate_v3_signature("POST", URL, nonce, "other", signature, dict(FORM))


def test_vobiz_signature_follows_the_documented_formula() -> None:
    signed = b"https://voice.example.com/telephony/plivo/inbound/demo.123"
    expected = base64.b64encode(hmac.new(b"token", signed, hashlib.sha256).digest()).decode()
    assert vobiz.sign("token", URL, "123") == expected  # the query is not signed


def test_parse_answer_reads_the_stream_and_its_parameters() -> None:
    xml = (
        '<Response><Stream bidirectional="true" keepCallAlive="true" '
        'contentType="audio/x-l16;rate=16000">wss://gw/ws/plivo?call_id=c1&amp;vb_token=1.ab'
        "</Stream></Response>"
    )
    target, says = plivo.parse_answer(xml)
    assert target is not None
    assert target.url == "wss://gw/ws/plivo?call_id=c1&vb_token=1.ab"
    assert target.parameters == {"call_id": "c1", "vb_token": "1.ab"}
    assert target.content_type == "audio/x-l16;rate=16000"
    assert says == []
    declined, says = plivo.parse_answer("<Response><Speak>Sorry.</Speak><Hangup/></Response>")
    assert (declined, says) == (None, ["Sorry."])
    with pytest.raises(ProtocolError):
        plivo.parse_answer("not xml")
    with pytest.raises(ProtocolError):
        plivo.parse_answer("<Other/>")


def test_plivo_messages() -> None:
    proto = plivo.PlivoProtocol(ids=IDS)
    (start,) = [json.loads(m) for m in proto.opening({"call_id": "c1"})]
    assert start["event"] == "start"
    assert start["start"]["callId"] == "call-1"
    assert start["start"]["streamId"] == "stream-1"
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000}
    pcm = bytes([1, 0]) * 160
    media = json.loads(proto.media(pcm, chunk=1, timestamp_ms=20))
    assert media["streamId"] == "stream-1"
    assert base64.b64decode(media["media"]["payload"]) == pcm16_to_ulaw(pcm)
    assert media["media"]["chunk"] == 1
    assert json.loads(proto.mark("m1"))["event"] == "playedStream"
    assert [json.loads(m)["event"] for m in proto.cleared(["m1", "m2"])] == ["clearedAudio"]
    assert json.loads(proto.dtmf("7"))["dtmf"]["digit"] == "7"
    stop = proto.stop()
    assert stop is not None
    assert json.loads(stop)["event"] == "stop"
    assert vobiz.VobizProtocol(ids=IDS).stop() is None
    numbers = [json.loads(m)["sequenceNumber"] for m in (proto.mark("a"), proto.mark("b"))]
    assert numbers[1] == numbers[0] + 1


def test_plivo_reads_server_messages() -> None:
    proto = plivo.PlivoProtocol(ids=IDS)
    ulaw = pcm16_to_ulaw(bytes([1, 0]) * 160)
    play = {
        "event": "playAudio",
        "streamId": "stream-1",
        "media": {"contentType": "audio/x-mulaw", "sampleRate": 8000,
                  "payload": base64.b64encode(ulaw).decode()},
    }  # fmt: skip
    heard = proto.parse(json.dumps(play))
    assert isinstance(heard, ServerMedia)
    assert len(heard.pcm) == 320
    checkpoint = {"event": "checkpoint", "streamId": "stream-1", "name": "m1"}
    assert proto.parse(json.dumps(checkpoint)) == ServerMark("m1")
    assert proto.parse('{"event":"clearAudio","streamId":"stream-1"}') == ServerClear()


@pytest.mark.parametrize(
    "raw",
    [
        b"binary",
        "not json",
        "[]",
        '{"event":"clearAudio"}',
        '{"event":"clearAudio","streamId":"other"}',
        '{"event":"checkpoint","streamId":"stream-1"}',
        '{"event":"nope","streamId":"stream-1"}',
        '{"event":"playAudio","streamId":"stream-1","media":{"contentType":"audio/x-l16",'
        '"sampleRate":8000,"payload":"AAAA"}}',
        '{"event":"playAudio","streamId":"stream-1","media":{"contentType":"audio/x-mulaw",'
        '"sampleRate":8000,"payload":"***"}}',
    ],
)
def test_plivo_refuses_what_is_not_its_protocol(raw: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        plivo.PlivoProtocol(ids=IDS).parse(raw)


def test_l16_16k_is_resampled_to_the_callers_8k() -> None:
    proto = plivo.PlivoProtocol("audio/x-l16;rate=16000", IDS)
    pcm = bytes(320)  # 20 ms at 8 kHz
    wire = base64.b64decode(json.loads(proto.media(pcm, 1, 0))["media"]["payload"])
    assert len(wire) == 640
    assert len(proto.decode_audio(wire)) == 320
    for bad in ("audio/x-mulaw;rate=16000", "audio/x-l16;rate=24000", "audio/wav"):
        with pytest.raises(ProtocolError):
            plivo.PlivoProtocol(bad, IDS)
