"""The browser page's media protocol (parsing, audio conversion, relayed call events) and
when the unauthenticated page is served."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voicebus.contracts.events import (
    AgentSpeechInterrupted,
    AgentSpeechInterruptedData,
    AgentSpeechStarted,
    AgentSpeechStartedData,
    CallEnded,
    CallEndedData,
    EndReason,
    Envelope,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.gateway.browser.codec import FRAME_BYTES, MAX_PARAMETERS, BrowserCodec
from voicebus.gateway.metrics import IgnoreReason
from voicebus.gateway.providers.base import (
    BinaryStreamCodec,
    CallEventRelay,
    DtmfIn,
    Ignored,
    MarkPlayed,
    MediaIn,
    StreamInfo,
    StreamStart,
    StreamStop,
)
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.settings import Environment


def utf8(text: str | bytes) -> bytes:
    """A text message as the socket hands it to the codec: UTF-8 bytes."""
    return text.encode() if isinstance(text, str) else text


pytestmark = pytest.mark.unit

PARAMS = {"call_id": "c1", "tenant_id": "default", "agent_id": "demo", "vb_token": "1.ab"}


def start(encoding: str = "f32le", rate: int = 48000, **extra: object) -> str:
    body = {"type": "start", "parameters": PARAMS, "format": {"encoding": encoding,
            "sample_rate": rate}, **extra}  # fmt: skip
    return json.dumps(body)


def start_with(parameters: dict[str, str]) -> str:
    audio = {"encoding": "s16le", "sample_rate": 16000}
    return json.dumps({"type": "start", "parameters": parameters, "format": audio})


def started(encoding: str = "f32le", rate: int = 48000) -> BrowserCodec:
    codec = BrowserCodec()
    event = codec.parse(utf8(start(encoding, rate)))
    assert isinstance(event, StreamStart)
    codec.bind(event)
    return codec


def sine(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype("<f4")


def ignored(reason: IgnoreReason) -> Ignored:
    return Ignored(reason)


def test_the_codec_takes_binary_messages_and_relays_events() -> None:
    codec = BrowserCodec()
    assert isinstance(codec, BinaryStreamCodec)
    assert isinstance(codec, CallEventRelay)
    assert codec.sample_rate == 16000


def test_start_carries_the_signed_parameters() -> None:
    event = BrowserCodec().parse(utf8(start()))
    assert event == StreamStart("c1", None, PARAMS)


def test_audio_before_start_is_ignored() -> None:
    codec = BrowserCodec()
    assert codec.parse_bytes(bytes(640)) == ignored(IgnoreReason.BEFORE_START)
    codec.parse(utf8(start("s16le", 16000)))  # parsed but not accepted by the session yet
    assert codec.parse_bytes(bytes(640)) == ignored(IgnoreReason.BEFORE_START)


def test_pcm16_at_16k_passes_through_in_whole_frames() -> None:
    codec = started("s16le", 16000)
    audio = np.random.default_rng(1).integers(-3000, 3000, 480, dtype="<i2").tobytes()
    assert codec.parse_bytes(audio[:320]) == StreamInfo()  # 10 ms: not a frame yet
    event = codec.parse_bytes(audio[320:])
    assert event == MediaIn(audio[:FRAME_BYTES], None, None)
    assert codec.parse_bytes(bytes(FRAME_BYTES)) == MediaIn(audio[FRAME_BYTES:] + bytes(320),
                                                            None, None)  # fmt: skip


def test_float_at_48k_is_resampled_to_16k_pcm16() -> None:
    codec = started("f32le", 48000)
    signal = sine(48000, 1.0)
    out = bytearray()
    for i in range(0, len(signal), 960):  # 20 ms messages, as the page sends
        event = codec.parse_bytes(signal[i : i + 960].tobytes())
        assert isinstance(event, MediaIn | StreamInfo)
        if isinstance(event, MediaIn):
            assert len(event.pcm) % FRAME_BYTES == 0
            out += event.pcm
    samples = np.frombuffer(bytes(out), "<i2").astype(np.float64)
    assert 15000 <= len(samples) <= 16000  # the resampler keeps a few ms back
    steady = samples[2000:]
    spectrum = np.abs(np.fft.rfft(steady))
    peak_hz = np.argmax(spectrum) * 16000 / len(steady)
    assert abs(peak_hz - 440) < 5
    assert 0.45 * 32767 < np.abs(steady).max() < 0.55 * 32767


def test_pcm16_at_another_rate_is_resampled() -> None:
    codec = started("s16le", 24000)
    pcm = (sine(24000, 0.2) * 32767).astype("<i2").tobytes()
    event = codec.parse_bytes(pcm)
    assert isinstance(event, MediaIn)
    assert len(event.pcm) % FRAME_BYTES == 0


def test_non_finite_floats_are_clipped_not_fatal() -> None:
    codec = started("f32le", 16000)
    frame = np.full(320, np.nan, "<f4")
    frame[:100] = np.inf
    frame[100:200] = -np.inf
    frame[200:] = 7.0
    event = codec.parse_bytes(frame.tobytes())
    assert isinstance(event, MediaIn)
    samples = np.frombuffer(event.pcm, "<i2")
    assert samples[:100].tolist() == [32767] * 100
    assert samples[100:200].tolist() == [-32767] * 100
    assert samples[200:].tolist() == [32767] * 120


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", IgnoreReason.INVALID_MESSAGE),
        (bytes(6), IgnoreReason.INVALID_MESSAGE),  # not whole Float32 samples
        (bytes(48000 * 4 + 4), IgnoreReason.OVERSIZE),  # more than one second
    ],
)
def test_bad_audio_is_counted_and_ignored(data: bytes, reason: IgnoreReason) -> None:
    codec = started("f32le", 48000)
    assert codec.parse_bytes(data) == ignored(reason)
    assert isinstance(codec.parse_bytes(sine(48000, 0.1).tobytes()), MediaIn)  # still works


def test_a_second_start_does_not_change_the_accepted_format() -> None:
    codec = started("s16le", 16000)
    event = codec.parse(utf8(start("f32le", 48000)))  # the session ignores a duplicate start
    assert isinstance(event, StreamStart)
    assert codec.parse_bytes(bytes(FRAME_BYTES)) == MediaIn(bytes(FRAME_BYTES), None, None)


def test_control_messages() -> None:
    codec = BrowserCodec()
    assert codec.parse(utf8('{"type": "mark", "name": "m7"}')) == MarkPlayed("m7")
    assert codec.parse(utf8('{"type": "dtmf", "digits": "12#"}')) == DtmfIn("12#")
    assert codec.parse(utf8('{"type": "stop"}')) == StreamStop()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", IgnoreReason.MALFORMED_JSON),
        ("[1, 2]", IgnoreReason.INVALID_MESSAGE),
        ('{"no": "type"}', IgnoreReason.INVALID_MESSAGE),
        ('{"type": 5}', IgnoreReason.INVALID_MESSAGE),
        ('{"type": "media"}', IgnoreReason.UNKNOWN_EVENT),
        ('{"type": "mark"}', IgnoreReason.INVALID_MESSAGE),
        ('{"type": "mark", "name": ""}', IgnoreReason.INVALID_MESSAGE),
        ('{"type": "dtmf", "digits": "x"}', IgnoreReason.INVALID_MESSAGE),
        ('{"type": "start", "parameters": {}}', IgnoreReason.INVALID_MESSAGE),
        (start(rate=12345), IgnoreReason.INVALID_MESSAGE),
        (start(encoding="opus"), IgnoreReason.INVALID_MESSAGE),
        (
            start_with({f"p{i}": "v" for i in range(MAX_PARAMETERS + 1)}),
            IgnoreReason.INVALID_MESSAGE,
        ),
        (start_with({"call_id": "x" * 600}), IgnoreReason.INVALID_MESSAGE),
    ],
)
def test_bad_text_is_counted_and_ignored(text: str, reason: IgnoreReason) -> None:
    assert BrowserCodec().parse(utf8(text)) == ignored(reason)


def test_outbound_messages() -> None:
    codec = started()
    assert codec.media(b"\x01\x02") == b"\x01\x02"
    assert json.loads(codec.mark("m1")) == {"type": "mark", "name": "m1"}
    assert json.loads(codec.clear()) == {"type": "clear"}


def _envelope(event: Envelope) -> bytes:
    return event.model_dump_json().encode()


def test_transcripts_and_agent_speech_are_relayed() -> None:
    codec = BrowserCodec()
    text = "Where is my order?"
    data = TranscriptFinalData(utterance_id="u1", text=text, start_ms=10, end_ms=900)
    heard = TranscriptFinal(tenant_id="default", call_id="c1", source="media/test", data=data)
    line = codec.relay(_envelope(heard))
    assert line is not None
    assert json.loads(line) == {"type": "transcript", "role": "caller",
                                "text": text, "utterance_id": "u1"}  # fmt: skip
    said = AgentSpeechStarted(
        tenant_id="default",
        call_id="c1",
        source="media/test",
        data=AgentSpeechStartedData(utterance_id="a1", text="Hi!"),
    )
    line = codec.relay(_envelope(said))
    assert line is not None
    assert json.loads(line)["role"] == "agent"
    cut = AgentSpeechInterrupted(
        tenant_id="default",
        call_id="c1",
        source="media/test",
        data=AgentSpeechInterruptedData(
            utterance_id="a1", text_planned="Hi there", text_heard="Hi", played_ms=300
        ),
    )
    line = codec.relay(_envelope(cut))
    assert line is not None
    assert json.loads(line) == {"type": "interrupted", "utterance_id": "a1", "text_heard": "Hi"}


def test_other_and_broken_events_are_not_relayed() -> None:
    codec = BrowserCodec()
    ended = CallEnded(
        tenant_id="default",
        call_id="c1",
        source="gateway/test",
        data=CallEndedData(reason=EndReason.CALLER_HANGUP),
    )
    assert codec.relay(_envelope(ended)) is None
    assert codec.relay(b'{"type": "transcript.final.v1", "data": {}}') is None
    assert codec.relay(b"\xff garbage") is None


@pytest.mark.parametrize(
    ("environment", "setting", "served"),
    [
        ("development", None, True),
        ("test", None, True),
        ("production", None, False),
        ("production", True, True),
        ("development", False, False),
    ],
)
def test_browser_calls_are_off_in_production_by_default(
    environment: str, setting: bool | None, served: bool
) -> None:
    # Constructed without validation: production refuses the placeholder secrets.
    settings = GatewaySettings.model_construct(
        environment=Environment(environment), browser_calls=setting
    )
    assert settings.browser_calls_enabled is served
