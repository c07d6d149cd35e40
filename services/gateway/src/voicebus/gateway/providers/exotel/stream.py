"""Exotel Voicebot (bidirectional AgentStream) WebSocket protocol.

In: ``connected``, ``start`` (``stream_sid``, ``call_sid``, ``custom_parameters``,
``media_format.sample_rate``), ``media`` (base64 PCM16LE mono at 8 kHz unless
the stream URL asked for 16 kHz, about 100 ms per message), ``dtmf``, ``mark``
(echo of ours once the audio before it played) and ``stop``. Out: ``media``,
``mark``, ``clear``, each with ``stream_sid``. Exotel plays agent audio well
only in messages of at least 3,200 bytes in multiples of 320: the session
gathers frames (``Provider.out_chunk_bytes``); frames are whole multiples.
``media`` and ``mark`` are decoded by msgspec straight into typed structs; the
rest, and anything malformed, by the pydantic models below.
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

MIN_OUT_BYTES: Final = 3200
"""Smallest agent audio message Exotel plays without gaps (100 ms at 8 kHz)."""
MAX_CHUNK_BYTES: Final = 64000
"""Longest caller chunk accepted: 2 s at 16 kHz (Exotel sends ~100 ms)."""
_RATES: Final[dict[str, SampleRate]] = {"8000": 8000, "16000": 16000}
_INVALID: Final = Ignored(IgnoreReason.INVALID_MESSAGE)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class MediaFormat(_Message):
    """Audio format of the stream."""

    encoding: str | None = None
    sample_rate: str | int | None = None


class StartInfo(_Message):
    """Metadata of a started stream."""

    stream_sid: str = Field(min_length=1, max_length=128)
    call_sid: str | None = Field(default=None, max_length=128)
    account_sid: str | None = None
    custom_parameters: dict[str, str] = Field(default_factory=dict)
    media_format: MediaFormat = Field(default_factory=MediaFormat)


class ConnectedMessage(_Message):
    """First message of a stream."""

    event: Literal["connected"]


class StartMessage(_Message):
    """Sent once, after ``connected``."""

    event: Literal["start"]
    start: StartInfo


class MediaChunk(_Message):
    """Caller audio."""

    chunk: int | None = None
    timestamp: int | None = None
    payload: str


class MediaMessage(_Message):
    """Caller audio, about every 100 ms."""

    event: Literal["media"]
    media: MediaChunk


class DtmfInfo(_Message):
    """A key the caller pressed."""

    digit: str = Field(min_length=1, max_length=1)


class DtmfMessage(_Message):
    """The caller pressed a key."""

    event: Literal["dtmf"]
    dtmf: DtmfInfo


class MarkInfo(_Message):
    """Name of a mark we sent."""

    name: str = Field(min_length=1, max_length=256)


class MarkMessage(_Message):
    """Echo of our mark."""

    event: Literal["mark"]
    mark: MarkInfo


class StopMessage(_Message):
    """The stream ended."""

    event: Literal["stop"]


ExotelMessage = Annotated[
    ConnectedMessage | StartMessage | MediaMessage | DtmfMessage | MarkMessage | StopMessage,
    Field(discriminator="event"),
]
EVENTS: Final = frozenset({"connected", "start", "media", "dtmf", "mark", "stop"})
_ANY: Final[TypeAdapter[ExotelMessage]] = TypeAdapter(ExotelMessage)


class _FastMedia(msgspec.Struct):
    payload: str
    chunk: int | None = None
    timestamp: int | None = None


class _FastMediaMessage(msgspec.Struct, tag_field="event", tag="media"):
    media: _FastMedia


class _FastMark(msgspec.Struct):
    name: MarkName


class _FastMarkMessage(msgspec.Struct, tag_field="event", tag="mark"):
    mark: _FastMark


_FAST: Final = msgspec.json.Decoder(_FastMediaMessage | _FastMarkMessage, strict=False)


def parse_message(text: str | bytes) -> ExotelMessage | Ignored:
    """Parse one message into its model, or say why it is ignored (the slow path)."""
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


def _media_event(chunk: MediaChunk | _FastMedia) -> MediaIn | Ignored:
    try:
        pcm = binascii.a2b_base64(chunk.payload, strict_mode=True)
    except binascii.Error:
        return _INVALID
    if not pcm or len(pcm) % 2:
        return _INVALID
    if len(pcm) > MAX_CHUNK_BYTES:
        return Ignored(IgnoreReason.OVERSIZE)
    return MediaIn(pcm, chunk.chunk, chunk.timestamp)


def to_event(message: ExotelMessage | Ignored) -> StreamEvent:
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


class ExotelCodec:
    """The Voicebot protocol for one WebSocket (see the module docstring)."""

    sample_rate: SampleRate = 8000
    binary_media = False

    def __init__(self) -> None:
        self._sid_json = b"null"
        self._media_head = b'{"event":"media","stream_sid":null,"media":{"payload":"'
        self._rate_of_start: SampleRate = 8000

    def parse(self, data: Payload) -> StreamEvent:
        """One Exotel message → a normalized event; never raises."""
        try:
            fast = _FAST.decode(data)
        except msgspec.DecodeError:  # not media nor a mark echo: the slow path says which
            message = parse_message(bytes(data))
            if isinstance(message, StartMessage):
                rate = message.start.media_format.sample_rate
                self._rate_of_start = _RATES.get(str(rate), 8000)
            return to_event(message)
        if isinstance(fast, _FastMediaMessage):
            return _media_event(fast.media)
        return MarkPlayed(fast.mark.name)

    def bind(self, start: StreamStart) -> None:
        """Address outbound messages to the started stream, at its sample rate."""
        self._sid_json = json_string(start.stream_id)
        self._media_head = b'{"event":"media","stream_sid":%b,"media":{"payload":"' % self._sid_json
        self.sample_rate = self._rate_of_start

    def media(self, pcm: bytes) -> bytes:
        """A ``media`` message playing ``pcm`` (PCM16LE, base64)."""
        payload = binascii.b2a_base64(pcm, newline=False)
        return b'%b%b"}}' % (self._media_head, payload)

    def mark(self, name: str) -> bytes:
        """A ``mark``; Exotel echoes it once the audio before it has played."""
        return b'{"event":"mark","stream_sid":%b,"mark":{"name":%b}}' % (
            self._sid_json,
            json_string(name),
        )

    def clear(self) -> bytes:
        """``clear``: Exotel drops buffered audio."""
        return b'{"event":"clear","stream_sid":%b}' % self._sid_json
