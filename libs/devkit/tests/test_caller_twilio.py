"""The simulated caller's Twilio side: messages, webhook signature and TwiML, as documented."""

from __future__ import annotations

import base64
import json

import pytest
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

from voicebus.devkit.caller import twilio

pytestmark = pytest.mark.unit

STREAM = "MZ" + "a" * 32
ACCOUNT = "AC" + "b" * 32
CALL = "CA" + "c" * 32


def test_sids_look_like_twilio_sids() -> None:
    sid = twilio.new_sid("MZ")
    assert sid.startswith("MZ")
    assert len(sid) == 34
    int(sid[2:], 16)
    assert twilio.new_sid("CA") != twilio.new_sid("CA")


def test_connected_has_no_sequence_number() -> None:
    assert twilio.connected_message() == {
        "event": "connected",
        "protocol": "Call",
        "version": "1.0.0",
    }


def test_start_carries_the_documented_fields() -> None:
    msg = twilio.start_message(
        sequence_number=1,
        stream_sid=STREAM,
        account_sid=ACCOUNT,
        call_sid=CALL,
        custom_parameters={"call_id": "c1", "ctx_name": "Ana"},
    )
    assert msg == {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": STREAM,
            "callSid": CALL,
            "tracks": ["inbound"],
            "customParameters": {"call_id": "c1", "ctx_name": "Ana"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": STREAM,
    }


def test_media_numbers_are_strings_and_payload_is_base64() -> None:
    ulaw = bytes(range(160))
    msg = twilio.media_message(
        sequence_number=7, stream_sid=STREAM, chunk=6, timestamp_ms=100, ulaw=ulaw
    )
    assert msg["event"] == "media"
    assert msg["sequenceNumber"] == "7"
    assert msg["streamSid"] == STREAM
    assert set(msg["media"]) == {"track", "chunk", "timestamp", "payload"}
    assert msg["media"]["track"] == "inbound"
    assert msg["media"]["chunk"] == "6"
    assert msg["media"]["timestamp"] == "100"
    assert base64.b64decode(msg["media"]["payload"]) == ulaw


def test_dtmf_mark_and_stop_messages() -> None:
    assert twilio.dtmf_message(sequence_number=3, stream_sid=STREAM, digit="5") == {
        "event": "dtmf",
        "streamSid": STREAM,
        "sequenceNumber": "3",
        "dtmf": {"track": "inbound_track", "digit": "5"},
    }
    assert twilio.mark_message(sequence_number=4, stream_sid=STREAM, name="m-1") == {
        "event": "mark",
        "sequenceNumber": "4",
        "streamSid": STREAM,
        "mark": {"name": "m-1"},
    }
    assert twilio.stop_message(
        sequence_number=5, stream_sid=STREAM, account_sid=ACCOUNT, call_sid=CALL
    ) == {
        "event": "stop",
        "sequenceNumber": "5",
        "stop": {"accountSid": ACCOUNT, "callSid": CALL},
        "streamSid": STREAM,
    }


def test_encode_is_compact_json() -> None:
    text = twilio.encode(twilio.connected_message())
    assert " " not in text
    assert json.loads(text)["event"] == "connected"


def test_server_messages_parse() -> None:
    payload = base64.b64encode(b"\xff" * 160).decode()
    media = twilio.parse_server_message(
        json.dumps({"event": "media", "streamSid": STREAM, "media": {"payload": payload}})
    )
    assert media == twilio.ServerMedia(STREAM, b"\xff" * 160)
    mark = twilio.parse_server_message(
        json.dumps({"event": "mark", "streamSid": STREAM, "mark": {"name": "u1:5"}})
    )
    assert mark == twilio.ServerMark(STREAM, "u1:5")
    clear = twilio.parse_server_message(json.dumps({"event": "clear", "streamSid": STREAM}))
    assert clear == twilio.ServerClear(STREAM)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01",
        "not json",
        "[1, 2]",
        json.dumps({"event": "media", "media": {"payload": ""}}),
        json.dumps({"event": "media", "streamSid": STREAM, "media": {"payload": "***"}}),
        json.dumps({"event": "media", "streamSid": STREAM, "media": {}}),
        json.dumps({"event": "mark", "streamSid": STREAM, "mark": {"name": 3}}),
        json.dumps({"event": "dance", "streamSid": STREAM}),
    ],
)
def test_malformed_server_messages_are_refused(raw: str | bytes) -> None:
    with pytest.raises(twilio.ProtocolError):
        twilio.parse_server_message(raw)


def test_signature_is_what_request_validator_accepts() -> None:
    params = twilio.webhook_params(
        account_sid=ACCOUNT, call_sid=CALL, from_number="+15005550006", to_number="+15005550001"
    )
    url = twilio.webhook_url("https://gw.example.com", "demo", {"ctx_name": "Ana María"})
    signature = twilio.sign("secret-token", url, params)
    validator = RequestValidator("secret-token")
    assert validator.validate(url, params, signature)
    assert not validator.validate(url.replace("Ana", "Bob"), params, signature)
    assert not RequestValidator("other-token").validate(url, params, signature)
    assert not validator.validate(url, {**params, "From": "+15005550009"}, signature)


def test_webhook_carries_twilio_form_fields() -> None:
    params = twilio.webhook_params(
        account_sid=ACCOUNT, call_sid=CALL, from_number="+1500", to_number="+1501"
    )
    assert params["CallSid"] == CALL
    assert params["AccountSid"] == ACCOUNT
    assert params["From"] == params["Caller"] == "+1500"
    assert params["To"] == params["Called"] == "+1501"
    assert params["Direction"] == "inbound"
    assert params["CallStatus"] == "ringing"


def test_webhook_url_and_context_query() -> None:
    query = twilio.context_query({"name": "Ana", "order": "1234"})
    assert query == {"ctx_name": "Ana", "ctx_order": "1234"}
    assert (
        twilio.webhook_url("http://127.0.0.1:8080/", "demo", query)
        == "http://127.0.0.1:8080/telephony/twilio/inbound/demo?ctx_name=Ana&ctx_order=1234"
    )
    assert twilio.webhook_url("http://h", "a/b") == "http://h/telephony/twilio/inbound/a%2Fb"


def test_parse_twiml_built_by_the_twilio_sdk() -> None:
    stream = Stream(url="wss://gw.example.com/ws/twilio")
    stream.parameter(name="call_id", value="c-1")
    stream.parameter(name="ctx_name", value="Ana & Bob")
    connect = Connect()
    connect.append(stream)
    response = VoiceResponse()
    response.append(connect)
    answer = twilio.parse_twiml(str(response))
    assert answer.stream == twilio.StreamInstruction(
        url="wss://gw.example.com/ws/twilio",
        parameters={"call_id": "c-1", "ctx_name": "Ana & Bob"},
    )
    assert not answer.hangup


def test_parse_twiml_say_and_hangup() -> None:
    response = VoiceResponse()
    response.say("Sorry.")
    response.hangup()
    answer = twilio.parse_twiml(str(response))
    assert answer.stream is None
    assert answer.says == ("Sorry.",)
    assert answer.hangup


@pytest.mark.parametrize("text", ["<html/>", "nope", "<Response><Connect><Stream/></Connect>"])
def test_parse_twiml_refuses_garbage(text: str) -> None:
    with pytest.raises(twilio.TwimlError):
        twilio.parse_twiml(text)


def test_media_socket_url_goes_to_the_gateway_directly() -> None:
    assert (
        twilio.media_socket_url(
            "wss://tunnel.example.com/ws/twilio", "https://tunnel.example.com", "http://127.0.0.1:8"
        )
        == "ws://127.0.0.1:8/ws/twilio"
    )
    assert (
        twilio.media_socket_url("ws://127.0.0.1:8/ws/twilio", "http://127.0.0.1:8", "http://x:9")
        == "ws://x:9/ws/twilio"
    )
    assert (
        twilio.media_socket_url("ws://other:7/ws/twilio", "http://127.0.0.1:8", "http://x:9")
        == "ws://other:7/ws/twilio"
    )
