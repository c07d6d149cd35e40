"""Twilio Media Streams over a bidirectional ``<Connect><Stream>`` WebSocket.

In: ``connected``, ``start``, ``media`` (base64 μ-law 8 kHz mono, ~20 ms each),
``dtmf``, ``mark`` (echo of a mark we sent, once the audio before it has
played or was cleared), ``stop``. Out: ``media``, ``mark``, ``clear``.

``media`` and ``mark`` are nearly every message, so they have a fast path:
msgspec decodes them from the socket's buffer straight into typed structs
(``fastpath.py``). Anything else (``start``, ``dtmf``, ``stop``: a few per
call) or anything malformed goes through the pydantic models below, which tell
malformed JSON, unknown events and invalid fields apart for the
ignored-message metric. Outbound messages are bytes templates.
"""

from __future__ import annotations

import binascii
import json
from typing import Annotated, Final, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voicebus.gateway.metrics import IgnoreReason
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
from voicebus.gateway.providers.fastpath import MarkName, json_string
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


class _FastMedia(msgspec.Struct):
    payload: str
    track: str = INBOUND_TRACK
    chunk: int | None = None
    timestamp: int | None = None


class _FastMediaMessage(msgspec.Struct, tag_field="event", tag="media"):
    media: _FastMedia


class _FastMark(msgspec.Struct):
    name: MarkName


class _FastMarkMessage(msgspec.Struct, tag_field="event", tag="mark"):
    mark: _FastMark


# strict=False: Twilio sends chunk and timestamp as strings of digits.
_FAST: Final = msgspec.json.Decoder(_FastMediaMessage | _FastMarkMessage, strict=False)


def parse_message(text: str | bytes) -> TwilioMessage | Ignored:
    """Parse one inbound message into its model, or say why it is ignored (the slow path)."""
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


_UNEXPECTED_TRACK: Final = Ignored(IgnoreReason.UNEXPECTED_TRACK)
_INVALID: Final = Ignored(IgnoreReason.INVALID_MESSAGE)
_OVERSIZE: Final = Ignored(IgnoreReason.OVERSIZE)


def _media_event(chunk: MediaChunk | _FastMedia) -> MediaIn | Ignored:
    if chunk.track != INBOUND_TRACK:
        return _UNEXPECTED_TRACK
    try:
        ulaw = binascii.a2b_base64(chunk.payload, strict_mode=True)
    except binascii.Error:
        return _INVALID
    if not ulaw:
        return _INVALID
    if len(ulaw) > MAX_CHUNK_BYTES:
        return _OVERSIZE
    return MediaIn(ulaw_to_pcm16(ulaw), chunk.chunk, chunk.timestamp)


def to_event(message: TwilioMessage | Ignored) -> StreamEvent:
    """The normalized event of a parsed message."""
    match message:
        case MediaMessage():
            return _media_event(message.media)
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
    binary_media = False

    def __init__(self) -> None:
        self._sid_json = b"null"
        self._media_head = b""
        self._mark_head = b""

    def parse(self, data: Payload) -> StreamEvent:
        """One Twilio message → a normalized event; never raises."""
        try:
            message = _FAST.decode(data)
        except msgspec.DecodeError:  # not media nor mark, or malformed: the slow path says which
            return to_event(parse_message(bytes(data)))
        if isinstance(message, _FastMediaMessage):
            return _media_event(message.media)
        return MarkPlayed(message.mark.name)

    def bind(self, start: StreamStart) -> None:
        """Address outbound messages to the started stream."""
        self._sid_json = json_string(start.stream_id)
        self._media_head = b'{"event":"media","streamSid":%b,"media":{"payload":"' % self._sid_json
        self._mark_head = b'{"event":"mark","streamSid":%b,"mark":{"name":' % self._sid_json

    def media(self, pcm: bytes) -> bytes:
        """A ``media`` message playing ``pcm`` (PCM16LE 8 kHz), as μ-law base64."""
        payload = binascii.b2a_base64(pcm16_to_ulaw(pcm), newline=False)
        return b'%b%b"}}' % (self._media_head, payload)

    def mark(self, name: str) -> bytes:
        """A ``mark`` message; Twilio echoes it once the audio before it has played."""
        return b"%b%b}}" % (self._mark_head, json_string(name))

    def clear(self) -> bytes:
        """A ``clear`` message: Twilio drops buffered audio and returns pending marks."""
        return b'{"event":"clear","streamSid":%b}' % self._sid_json
