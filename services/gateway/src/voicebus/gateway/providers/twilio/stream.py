"""Twilio Media Streams over a bidirectional ``<Connect><Stream>`` WebSocket.

In: ``connected``, ``start``, ``media`` (base64 μ-law 8 kHz mono, ~20 ms each),
``dtmf``, ``mark`` (echo of a mark we sent, once the audio before it has
played or was cleared), ``stop``. Out: ``media``, ``mark``, ``clear``.

``media`` is nearly every message, so it has a fast path: one pydantic model
validated straight from the JSON text (measured ~3.3 µs with the base64
decode, against ~4.2 µs for ``json.loads`` plus dict access and ~5.1 µs for
the discriminated union of every message). Anything that is not a valid media
message falls back to the union, which tells malformed JSON, unknown events
and invalid fields apart for the ignored-message metric.
"""

from __future__ import annotations

import binascii
import json
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voicebus.gateway.metrics import IgnoreReason
from voicebus.gateway.providers.base import (
    DtmfIn,
    Ignored,
    MarkPlayed,
    MediaIn,
    SampleRate,
    StreamEvent,
    StreamInfo,
    StreamStart,
    StreamStop,
)
from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16

SAMPLE_RATE: Final[SampleRate] = 8000
MAX_CHUNK_BYTES: Final = SAMPLE_RATE
"""Longest μ-law chunk accepted in one media message: one second (Twilio sends 160 bytes)."""
INBOUND_TRACK: Final = "inbound"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ConnectedMessage(_Message):
    """First message of a stream: the protocol Twilio speaks."""

    event: Literal["connected"]
    protocol: str | None = None
    version: str | None = None


class MediaFormat(_Message):
    """Audio format of the stream; Twilio Media Streams are always μ-law 8 kHz mono."""

    encoding: Literal["audio/x-mulaw"] = "audio/x-mulaw"
    sample_rate: Literal[8000] = Field(default=8000, alias="sampleRate")
    channels: Literal[1] = 1


class StartInfo(_Message):
    """Metadata of a started stream."""

    stream_sid: str = Field(alias="streamSid", min_length=1, max_length=128)
    account_sid: str | None = Field(default=None, alias="accountSid")
    call_sid: str | None = Field(default=None, alias="callSid", max_length=128)
    tracks: list[str] = Field(default_factory=list)
    custom_parameters: dict[str, str] = Field(default_factory=dict, alias="customParameters")
    media_format: MediaFormat = Field(default_factory=MediaFormat, alias="mediaFormat")


class StartMessage(_Message):
    """Sent once, after ``connected``."""

    event: Literal["start"]
    sequence_number: int | None = Field(default=None, alias="sequenceNumber")
    stream_sid: str | None = Field(default=None, alias="streamSid")
    start: StartInfo


class MediaChunk(_Message):
    """One chunk of caller audio."""

    track: str = INBOUND_TRACK
    chunk: int | None = None
    timestamp: int | None = None
    payload: str


class MediaMessage(_Message):
    """Caller audio, about every 20 ms."""

    event: Literal["media"]
    sequence_number: int | None = Field(default=None, alias="sequenceNumber")
    stream_sid: str | None = Field(default=None, alias="streamSid")
    media: MediaChunk


class DtmfInfo(_Message):
    """A key the caller pressed."""

    track: str | None = None
    digit: str = Field(min_length=1, max_length=1)


class DtmfMessage(_Message):
    """The caller pressed a key (bidirectional streams)."""

    event: Literal["dtmf"]
    sequence_number: int | None = Field(default=None, alias="sequenceNumber")
    stream_sid: str | None = Field(default=None, alias="streamSid")
    dtmf: DtmfInfo


class MarkInfo(_Message):
    """Name of a mark we sent."""

    name: str = Field(min_length=1, max_length=256)


class MarkMessage(_Message):
    """Echo of our mark: the audio sent before it has played, or was dropped by ``clear``."""

    event: Literal["mark"]
    sequence_number: int | None = Field(default=None, alias="sequenceNumber")
    stream_sid: str | None = Field(default=None, alias="streamSid")
    mark: MarkInfo


class StopInfo(_Message):
    """Which call's stream stopped."""

    account_sid: str | None = Field(default=None, alias="accountSid")
    call_sid: str | None = Field(default=None, alias="callSid")


class StopMessage(_Message):
    """The stream ended (the call ended or the stream was stopped)."""

    event: Literal["stop"]
    sequence_number: int | None = Field(default=None, alias="sequenceNumber")
    stream_sid: str | None = Field(default=None, alias="streamSid")
    stop: StopInfo = Field(default_factory=StopInfo)


TwilioMessage = Annotated[
    ConnectedMessage | StartMessage | MediaMessage | DtmfMessage | MarkMessage | StopMessage,
    Field(discriminator="event"),
]
"""Any message Twilio sends on a Media Streams WebSocket."""

EVENTS: Final = frozenset({"connected", "start", "media", "dtmf", "mark", "stop"})
_ANY: Final[TypeAdapter[TwilioMessage]] = TypeAdapter(TwilioMessage)
_MEDIA: Final[TypeAdapter[MediaMessage]] = TypeAdapter(MediaMessage)


def parse_message(text: str) -> TwilioMessage | Ignored:
    """Parse one inbound message into its model, or say why it is ignored."""
    try:
        return _MEDIA.validate_json(text)
    except ValidationError:
        pass  # not a valid media message: find out what it is
    try:
        raw = json.loads(text)
    except ValueError:
        return Ignored(IgnoreReason.MALFORMED_JSON)
    if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
        return Ignored(IgnoreReason.INVALID_MESSAGE)
    if raw["event"] not in EVENTS:
        return Ignored(IgnoreReason.UNKNOWN_EVENT)
    try:
        return _ANY.validate_python(raw)
    except ValidationError:
        return Ignored(IgnoreReason.INVALID_MESSAGE)


def _media_event(message: MediaMessage) -> MediaIn | Ignored:
    chunk = message.media
    if chunk.track != INBOUND_TRACK:
        return Ignored(IgnoreReason.UNEXPECTED_TRACK)
    try:
        ulaw = binascii.a2b_base64(chunk.payload, strict_mode=True)
    except binascii.Error:
        return Ignored(IgnoreReason.INVALID_MESSAGE)
    if not ulaw:
        return Ignored(IgnoreReason.INVALID_MESSAGE)
    if len(ulaw) > MAX_CHUNK_BYTES:
        return Ignored(IgnoreReason.OVERSIZE)
    return MediaIn(ulaw_to_pcm16(ulaw), chunk.chunk, chunk.timestamp)


def to_event(message: TwilioMessage | Ignored) -> StreamEvent:
    """The normalized event of a parsed message."""
    match message:
        case MediaMessage():
            return _media_event(message)
        case MarkMessage():
            return MarkPlayed(message.mark.name)
        case DtmfMessage():
            return DtmfIn(message.dtmf.digit)
        case StartMessage():
            info = message.start
            return StreamStart(info.stream_sid, info.call_sid, dict(info.custom_parameters))
        case StopMessage():
            return StreamStop()
        case ConnectedMessage():
            return StreamInfo()
        case Ignored():
            return message


class TwilioCodec:
    """Media Streams protocol for one WebSocket (see the module docstring)."""

    sample_rate: SampleRate = SAMPLE_RATE

    def __init__(self) -> None:
        self._sid_json = "null"
        self._media_head = ""
        self._mark_head = ""

    def parse(self, text: str) -> StreamEvent:
        """One Twilio message → a normalized event; never raises."""
        return to_event(parse_message(text))

    def bind(self, start: StreamStart) -> None:
        """Address outbound messages to the started stream."""
        self._sid_json = json.dumps(start.stream_id)
        self._media_head = f'{{"event":"media","streamSid":{self._sid_json},"media":{{"payload":"'
        self._mark_head = f'{{"event":"mark","streamSid":{self._sid_json},"mark":{{"name":'

    def media(self, pcm: bytes) -> str:
        """A ``media`` message playing ``pcm`` (PCM16LE 8 kHz), as μ-law base64."""
        payload = binascii.b2a_base64(pcm16_to_ulaw(pcm), newline=False).decode("ascii")
        return f'{self._media_head}{payload}"}}}}'

    def mark(self, name: str) -> str:
        """A ``mark`` message; Twilio echoes it once the audio before it has played."""
        return f"{self._mark_head}{json.dumps(name)}}}}}"

    def clear(self) -> str:
        """A ``clear`` message: Twilio drops buffered audio and returns pending marks."""
        return f'{{"event":"clear","streamSid":{self._sid_json}}}'
