"""The browser page's media WebSocket protocol (``WS /ws/browser``).

The page first asks ``POST /browser/session`` for a call (see :mod:`.routes`):
the answer carries signed stream parameters, exactly what a telephony
provider's webhook answer hands the provider. Then, on the WebSocket:

Page → gateway:

- text ``{"type": "start", "parameters": {...}, "format": {"encoding": "f32le",
  "sample_rate": 48000}}``, once: the signed parameters, unchanged, and the
  format of the audio that follows. Encodings: ``f32le`` (Float32, what Web
  Audio produces) or ``s16le`` (PCM16); rates 8–48 kHz. Audio not at 16 kHz
  PCM16 is resampled with soxr to the call's rate (16 kHz PCM16 on the bus).
- binary: caller audio, mono little-endian samples in the declared format,
  any length up to one second (the page sends 20 ms). It reaches the bus in
  whole 20 ms frames.
- text ``{"type": "mark", "name": "..."}``: a mark the gateway sent, echoed
  once the audio before it has played (or was dropped by a ``clear``).
- text ``{"type": "dtmf", "digits": "1"}``: a key on the page's keypad.
- text ``{"type": "stop"}``: hang up (closing the socket does the same).

Gateway → page:

- binary: agent audio, PCM16LE mono at 16 kHz.
- text ``{"type": "mark", "name": "..."}``: echo it when the audio sent before
  it has played.
- text ``{"type": "clear"}``: drop the audio not yet played, echo pending marks.
- text ``{"type": "transcript", "role": "caller" | "agent", "text": "...",
  "utterance_id": ...}``: what the caller said (``transcript.final``) and what
  the agent starts saying (``agent.speech.started``).
- text ``{"type": "interrupted", "utterance_id": "...", "text_heard": "..."}``:
  the caller cut the agent off (``agent.speech.interrupted``).

Malformed, unknown and out-of-place messages are counted and ignored, as for
every provider; none ends the call.
"""

from __future__ import annotations

import json
from typing import Annotated, Final, Literal

import numpy as np
import soxr  # type: ignore[import-untyped]  # soxr ships no type marker
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voicebus.contracts.audio import frame_bytes
from voicebus.contracts.events import (
    AgentSpeechInterrupted,
    AgentSpeechStarted,
    TranscriptFinal,
    parse_event,
)
from voicebus.gateway.metrics import IgnoreReason
from voicebus.gateway.parameters import CALL_ID
from voicebus.gateway.providers.base import (
    DtmfIn,
    Ignored,
    MarkPlayed,
    MediaIn,
    Payload,
    SampleRate,
    StreamEvent,
    StreamInfo,
    StreamStart,
    StreamStop,
)

SAMPLE_RATE: Final[SampleRate] = 16000
"""The call's rate on the bus; agent audio reaches the page at this rate too."""
FRAME_BYTES: Final = frame_bytes(SAMPLE_RATE)
MAX_PARAMETERS: Final = 64
_NOTHING: Final = StreamInfo()
_BEFORE_START: Final = Ignored(IgnoreReason.BEFORE_START)
_INVALID: Final = Ignored(IgnoreReason.INVALID_MESSAGE)
_OVERSIZE: Final = Ignored(IgnoreReason.OVERSIZE)

Encoding = Literal["f32le", "s16le"]
_SAMPLE_BYTES: Final[dict[str, int]] = {"f32le": 4, "s16le": 2}
_DTYPES: Final[dict[str, str]] = {"f32le": "<f4", "s16le": "<i2"}


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class AudioFormatIn(_Message):
    """Format of the binary audio messages the page sends."""

    encoding: Encoding
    sample_rate: Literal[8000, 16000, 22050, 24000, 32000, 44100, 48000]


class StartMessage(_Message):
    """First message: the signed parameters from ``POST /browser/session`` and the audio format."""

    type: Literal["start"]
    parameters: dict[str, Annotated[str, Field(max_length=512)]] = Field(max_length=MAX_PARAMETERS)
    format: AudioFormatIn


class MarkMessage(_Message):
    """Echo of a mark the gateway sent."""

    type: Literal["mark"]
    name: str = Field(min_length=1, max_length=256)


class DtmfMessage(_Message):
    """Keys pressed on the page's keypad."""

    type: Literal["dtmf"]
    digits: str = Field(pattern=r"^[0-9*#A-D]{1,32}$")


class StopMessage(_Message):
    """The person hung up."""

    type: Literal["stop"]


PageMessage = Annotated[
    StartMessage | MarkMessage | DtmfMessage | StopMessage, Field(discriminator="type")
]
_ANY: Final[TypeAdapter[PageMessage]] = TypeAdapter(PageMessage)
TYPES: Final = frozenset({"start", "mark", "dtmf", "stop"})
_RELAYED: Final = tuple(
    f'"{cls.model_fields["type"].default}"'.encode()
    for cls in (TranscriptFinal, AgentSpeechStarted, AgentSpeechInterrupted)
)


class AudioConverter:
    """Page audio in any accepted format → 16 kHz PCM16LE in whole 20 ms frames.

    Args:
        audio: the format the page declared.
    """

    def __init__(self, audio: AudioFormatIn) -> None:
        self.format = audio
        self._dtype = _DTYPES[audio.encoding]
        self._sample_bytes = _SAMPLE_BYTES[audio.encoding]
        self.max_bytes = audio.sample_rate * self._sample_bytes  # one second
        self._resampler = (
            None
            if audio.sample_rate == SAMPLE_RATE
            else soxr.ResampleStream(audio.sample_rate, SAMPLE_RATE, 1, dtype="float32")
        )
        self._pending = bytearray()

    def feed(self, data: bytes | memoryview) -> StreamEvent:
        """Convert one binary message: :class:`MediaIn` once a whole frame is ready."""
        if not data or len(data) % self._sample_bytes:
            return _INVALID
        if len(data) > self.max_bytes:
            return _OVERSIZE
        if self._resampler is None and self._dtype == "<i2":
            self._pending += data
        else:
            self._pending += self._to_pcm16(np.frombuffer(data, dtype=self._dtype))
        ready = len(self._pending) - len(self._pending) % FRAME_BYTES
        if not ready:
            return _NOTHING
        pcm = bytes(self._pending[:ready])
        del self._pending[:ready]
        return MediaIn(pcm=pcm, seq=None, ts_ms=None)

    def _to_pcm16(self, samples: np.ndarray) -> bytes:
        if samples.dtype.kind == "f":
            floats = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
        else:
            floats = samples.astype(np.float32) / 32768.0
        if self._resampler is not None:
            floats = self._resampler.resample_chunk(floats)
        return (np.clip(floats, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class BrowserCodec:
    """One browser page's media WebSocket: the :class:`~..providers.base.StreamCodec` of it.

    Binary messages carry audio (:meth:`parse_bytes`), text messages JSON
    control (:meth:`parse`); call events are relayed to the page (:meth:`relay`).
    """

    sample_rate: SampleRate = SAMPLE_RATE
    binary_media = True

    def __init__(self) -> None:
        self._announced: AudioFormatIn | None = None
        self._audio: AudioConverter | None = None

    def parse(self, data: Payload) -> StreamEvent:
        """Turn one text message from the page into a normalized event. Never raises."""
        try:
            raw = json.loads(bytes(data))
        except ValueError:
            return Ignored(IgnoreReason.MALFORMED_JSON)
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            return _INVALID
        if raw["type"] not in TYPES:
            return Ignored(IgnoreReason.UNKNOWN_EVENT)
        try:
            message = _ANY.validate_python(raw)
        except ValidationError:
            return _INVALID
        match message:
            case StartMessage():
                # Takes effect in bind(): only once the session accepted this start.
                self._announced = message.format
                params = message.parameters
                return StreamStart(params.get(CALL_ID, ""), None, params)
            case MarkMessage():
                return MarkPlayed(message.name)
            case DtmfMessage():
                return DtmfIn(message.digits)
            case StopMessage():
                return StreamStop()

    def parse_bytes(self, data: Payload) -> StreamEvent:
        """Turn one binary message (caller audio) into :class:`MediaIn`. Never raises."""
        if self._audio is None:
            return _BEFORE_START
        return self._audio.feed(data)

    def bind(self, start: StreamStart) -> None:
        """The session accepted ``start``: audio in its announced format may flow."""
        if self._announced is not None and self._audio is None:
            self._audio = AudioConverter(self._announced)

    def media(self, pcm: bytes) -> bytes:
        """Agent audio goes to the page as it is on the bus: PCM16LE at 16 kHz."""
        return pcm

    def mark(self, name: str) -> bytes:
        """A mark the page echoes once the audio before it has played."""
        return json.dumps({"type": "mark", "name": name}).encode()

    def clear(self) -> bytes:
        """Drop the audio not yet played."""
        return b'{"type":"clear"}'

    def relay(self, event: bytes) -> bytes | None:
        """The transcript line a call event shows on the page, if it shows one."""
        if not any(kind in event for kind in _RELAYED):  # most events are not shown
            return None
        try:
            parsed = parse_event(event)
        except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
            return None
        match parsed:
            case TranscriptFinal():
                return _line("caller", parsed.data.text, parsed.data.utterance_id)
            case AgentSpeechStarted():
                return _line("agent", parsed.data.text, parsed.data.utterance_id)
            case AgentSpeechInterrupted():
                data = parsed.data
                return json.dumps(
                    {
                        "type": "interrupted",
                        "utterance_id": data.utterance_id,
                        "text_heard": data.text_heard,
                    }
                ).encode()
        return None


def _line(role: str, text: str, utterance_id: str | None) -> bytes:
    return json.dumps(
        {"type": "transcript", "role": role, "text": text, "utterance_id": utterance_id}
    ).encode()
