"""Pure pieces of outbound calls and live-call control: status mapping per provider, audio
chunking, in-band DTMF, the Exotel codec."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from voicebus.contracts.events import AmdResult
from voicebus.gateway.live import AudioChunker, tone_chunks
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
from voicebus.gateway.providers.exotel.outbound import ExotelDialer
from voicebus.gateway.providers.exotel.outbound import status_of as exotel_status
from voicebus.gateway.providers.exotel.settings import stream_auth as exotel_stream_auth
from voicebus.gateway.providers.exotel.settings import stream_password
from voicebus.gateway.providers.exotel.stream import ExotelCodec
from voicebus.gateway.providers.exotel.webhook import tenant_webhook as exotel_tenant_webhook
from voicebus.gateway.providers.outbound import CallStatus, DialRequest, ProviderAccount
from voicebus.gateway.providers.twilio.outbound import status_of as twilio_status
from voicebus.gateway.settings import GatewaySettings
from voicebus.gateway.tones import dtmf_pcm
from voicebus.runtime.errors import ConfigurationError, ProviderError


def utf8(text: str | bytes) -> bytes:
    """A text message as the socket hands it to the codec: UTF-8 bytes."""
    return text.encode() if isinstance(text, str) else text


pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"CallStatus": "initiated"}, CallStatus.INITIATED),
        ({"CallStatus": "ringing"}, CallStatus.RINGING),
        ({"CallStatus": "in-progress"}, CallStatus.ANSWERED),
        ({"CallStatus": "busy"}, CallStatus.BUSY),
        ({"CallStatus": "no-answer"}, CallStatus.NO_ANSWER),
        ({"CallStatus": "failed"}, CallStatus.FAILED),
        ({"CallStatus": "canceled"}, CallStatus.CANCELED),
        ({"CallStatus": "completed"}, CallStatus.COMPLETED),
        ({"AnsweredBy": "machine_end_beep"}, CallStatus.MACHINE),
        ({"AnsweredBy": "human"}, CallStatus.HUMAN),
    ],
)
def test_twilio_statuses(form: dict[str, str], status: CallStatus) -> None:
    update = twilio_status({"CallSid": "CA1", **form})
    assert update is not None
    assert (update.status, update.provider_call_id) == (status, "CA1")


def test_twilio_amd_details_and_unknown_statuses() -> None:
    update = twilio_status({"AnsweredBy": "fax", "MachineDetectionDuration": "2400"})
    assert update is not None
    assert (update.status, update.amd, update.detection_ms) == (
        CallStatus.MACHINE, AmdResult.FAX, 2400,
    )  # fmt: skip
    assert twilio_status({"CallStatus": "teleported"}) is None
    failed = twilio_status({"CallStatus": "failed", "ErrorCode": "13224"})
    assert failed is not None
    assert failed.error_code == "13224"


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"EventType": "ringing", "Status": "ringing"}, CallStatus.RINGING),
        ({"EventType": "answered", "Status": "in-progress"}, CallStatus.ANSWERED),
        ({"EventType": "terminal", "Status": "busy"}, CallStatus.BUSY),
        ({"EventType": "terminal", "Status": "no-answer"}, CallStatus.NO_ANSWER),
        ({"EventType": "terminal", "Status": "failed"}, CallStatus.FAILED),
        ({"Status": "completed"}, CallStatus.COMPLETED),
    ],
)
def test_exotel_statuses(form: dict[str, str], status: CallStatus) -> None:
    update = exotel_status({"CallSid": "x1", **form})
    assert update is not None
    assert update.status is status
    assert exotel_status({"Status": "weird"}) is None


def test_chunker_passes_frames_through_without_a_minimum() -> None:
    chunker = AudioChunker(0)
    assert chunker.push(b"ab", flush=False) == b"ab"


def test_chunker_gathers_to_the_minimum_and_pads_a_flushed_tail() -> None:
    chunker = AudioChunker(3200)
    frame = b"\x01\x00" * 160
    assert all(chunker.push(frame, flush=False) is None for _ in range(9))
    assert chunker.push(frame, flush=False) == frame * 10
    assert chunker.push(frame, flush=True) == frame + bytes(2880)
    assert chunker.take() is None
    chunker.push(frame, flush=False)
    chunker.clear()
    assert chunker.take() is None


def test_dtmf_tones_hold_both_frequencies_of_each_key() -> None:
    pcm = np.frombuffer(dtmf_pcm("5", 8000), dtype="<i2").astype(np.float64)
    tone = pcm[:800]  # 100 ms
    spectrum = np.abs(np.fft.rfft(tone))
    freqs = np.fft.rfftfreq(len(tone), 1 / 8000)
    top = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert top == pytest.approx([770, 1336], abs=10)
    assert len(dtmf_pcm("1w2", 8000)) == 2 * (800 + 640) * 2 + 4000 * 2
    with pytest.raises(ValueError, match="keypad"):
        dtmf_pcm("x", 8000)


def _start(rate: str = "8000") -> str:
    return json.dumps({
        "event": "start", "sequence_number": "1", "stream_sid": "MZ1",
        "start": {"stream_sid": "MZ1", "call_sid": "CA1", "account_sid": "AC1",
                  "custom_parameters": {"call_id": "c1"},
                  "media_format": {"encoding": "audio/x-raw", "sample_rate": rate}},
    })  # fmt: skip


def test_exotel_codec_reads_every_message() -> None:
    codec = ExotelCodec()
    start = codec.parse(utf8(_start()))
    assert start == StreamStart("MZ1", "CA1", {"call_id": "c1"})
    payload = base64.b64encode(b"\x01\x00" * 800).decode()
    media = codec.parse(utf8(json.dumps({"event": "media", "stream_sid": "MZ1",
                                    "media": {"chunk": "2", "timestamp": "200",
                                              "payload": payload}})))  # fmt: skip
    assert media == MediaIn(b"\x01\x00" * 800, 2, 200)
    assert codec.parse(utf8('{"event":"connected"}')) == StreamInfo()
    assert codec.parse(utf8('{"event":"dtmf","dtmf":{"digit":"5"}}')) == DtmfIn("5")
    assert codec.parse(utf8('{"event":"mark","mark":{"name":"m1"}}')) == MarkPlayed("m1")
    assert codec.parse(utf8('{"event":"stop","stop":{"reason":"callended"}}')) == StreamStop()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", IgnoreReason.MALFORMED_JSON),
        ('{"event":"dance"}', IgnoreReason.UNKNOWN_EVENT),
        ('{"event":"media","media":{"payload":"!!"}}', IgnoreReason.INVALID_MESSAGE),
        ('{"event":"media","media":{"payload":"AA=="}}', IgnoreReason.INVALID_MESSAGE),
        ("[]", IgnoreReason.INVALID_MESSAGE),
    ],
)
def test_exotel_codec_ignores_bad_messages(text: str, reason: IgnoreReason) -> None:
    assert ExotelCodec().parse(utf8(text)) == Ignored(reason)


def test_exotel_codec_writes_to_the_started_stream_at_its_rate() -> None:
    codec = ExotelCodec()
    start = codec.parse(utf8(_start("16000")))
    assert isinstance(start, StreamStart)
    codec.bind(start)
    assert codec.sample_rate == 16000
    media = json.loads(codec.media(b"\x02\x00" * 4))
    assert media == {"event": "media", "stream_sid": "MZ1",
                     "media": {"payload": base64.b64encode(b"\x02\x00" * 4).decode()}}  # fmt: skip
    assert json.loads(codec.mark("m:1")) == {"event": "mark", "stream_sid": "MZ1",
                                             "mark": {"name": "m:1"}}  # fmt: skip
    assert json.loads(codec.clear()) == {"event": "clear", "stream_sid": "MZ1"}


def test_tone_chunks_are_whole_messages_of_the_providers_size() -> None:
    chunks = tone_chunks("12#", 8000, 3200)
    assert {len(c) for c in chunks} == {3200}
    assert sum(len(c) for c in chunks) >= len(dtmf_pcm("12#", 8000))
    assert {len(c) for c in tone_chunks("1", 8000, 0)} == {3200}  # 200 ms messages


def _exotel_account(**fields: str) -> ProviderAccount:
    return ProviderAccount(
        "exotel", "acme", {"api_token": SecretStr("tok"), "webhook_password": SecretStr("acme-pw")},
        {"account_id": "acme1", "api_key": "key", "caller_id": "+918047491899",
         "api_base_url": "https://api.exotel.test", "webhook_user": "acme-hooks", **fields},
    )  # fmt: skip


def _exotel_dialer(handler: Callable[[httpx.Request], httpx.Response]) -> ExotelDialer:
    return ExotelDialer(_exotel_account(), transport=httpx.MockTransport(handler))


DIAL = DialRequest(
    call_id="c1", tenant_id="default", agent_id="demo", to_number="+919876543210",
    from_number=None, answer_url="https://gw/telephony/exotel/answer/c1?x=1",
    status_url="https://gw/telephony/exotel/status/c1?x=1",
    stream_url="wss://gw/ws/exotel?call_id=c1&vb_token=1.ab",
)  # fmt: skip


async def test_exotel_dial_posts_calls_connect() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"call": {"sid": "abc", "status": "in-progress"}})

    dialer = _exotel_dialer(handler)
    assert await dialer.dial(DIAL) == "abc"
    await dialer.aclose()
    (request,) = seen
    assert request.url.path == "/v1/accounts/acme1/calls/connect"
    form = parse_qs(request.content.decode())
    assert form["from"] == ["+919876543210"]
    assert form["callerid"] == ["+918047491899"]
    assert form["streamtype"] == ["bidirectional"]
    assert form["statuscallbackevents[]"] == ["ringing", "answered", "terminal"]
    # The stream URL's password is the call's own, the status URL's the tenant's:
    # the gateway-wide webhook password is never sent for a tenant.
    password = stream_password({"vb_token": "1.ab"})
    assert (
        form["streamurl"][0] == f"wss://vb-stream:{password}@gw/ws/exotel?call_id=c1&vb_token=1.ab"
    )
    assert (
        form["statuscallback"][0] == "https://acme-hooks:acme-pw@gw/telephony/exotel/status/c1?x=1"
    )
    assert "dev-secret" not in request.content.decode()


def test_a_tenants_exotel_account_needs_its_own_webhook_credentials() -> None:
    account = _exotel_account()
    fields = {k: v for k, v in account.fields.items() if k != "webhook_user"}
    bare = ProviderAccount("exotel", "acme", {"api_token": SecretStr("tok")}, fields)
    with pytest.raises(ConfigurationError, match="webhook_user"):
        ExotelDialer(bare)
    with pytest.raises(ConfigurationError, match="webhook_user"):
        exotel_tenant_webhook(GatewaySettings(), bare)


def test_the_exotel_stream_handshake_checks_the_calls_own_credentials() -> None:
    params = {"call_id": "c1", "vb_token": "1.ab"}
    password = stream_password(params)
    assert password is not None

    def basic(user: str, pw: str) -> dict[str, str]:
        return {"authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}

    settings = GatewaySettings()
    assert exotel_stream_auth(settings, basic("vb-stream", password), params)
    assert not exotel_stream_auth(settings, basic("vb-stream", password), {"vb_token": "1.cd"})
    assert not exotel_stream_auth(settings, basic("voicebus", "dev-secret"), params)
    assert not exotel_stream_auth(settings, {}, params)


@pytest.mark.parametrize(
    ("response", "code", "retryable"),
    [
        (httpx.Response(400, json={"RestException": {"Code": 34002}}), "34002", False),
        (httpx.Response(503, text="busy"), None, True),
        (httpx.Response(200, text="<html>"), None, False),
    ],
)
async def test_exotel_dial_failures_are_provider_errors(
    response: httpx.Response, code: str | None, retryable: bool
) -> None:
    dialer = _exotel_dialer(lambda request: response)
    with pytest.raises(ProviderError) as caught:
        await dialer.dial(DIAL)
    await dialer.aclose()
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
