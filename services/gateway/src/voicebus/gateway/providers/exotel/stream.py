"""Exotel Voicebot (bidirectional AgentStream) WebSocket protocol.

In: ``connected``, ``start`` (``stream_sid``, ``call_sid``, ``custom_parameters``,
``media_format.sample_rate``), ``media`` (base64 PCM16LE mono at 8 kHz unless
the stream URL asked for 16 kHz, about 100 ms per message), ``dtmf``, ``mark``
(echo of ours once the audio before it played) and ``stop``. Out: ``media``,
``mark``, ``clear``, each with ``stream_sid``. Exotel plays agent audio well
only in messages of at least 3,200 bytes in multiples of 320: the session
gathers frames (``Provider.out_chunk_bytes``); frames are whole multiples.
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

MIN_OUT_BYTES: Final = 3200
"""Smallest agent audio message Exotel plays without gaps (100 ms at 8 kHz)."""
MAX_CHUNK_BYTES: Final = 64000
"""Longest caller chunk accepted: 2 s at 16 kHz (Exotel sends ~100 ms)."""
_RATES: Final[dict[str, SampleRate]] = {"8000": 8000, "16000": 16000}


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
_MEDIA: Final[TypeAdapter[MediaMessage]] = TypeAdapter(MediaMessage)


def parse_message(text: str) -> ExotelMessage | Ignored:
    """Parse one message into its model, or say why it is ignored."""
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


def _media_event(chunk: MediaChunk) -> MediaIn | Ignored:
    try:
        pcm = binascii.a2b_base64(chunk.payload, strict_mode=True)
    except binascii.Error:
        return Ignored(IgnoreReason.INVALID_MESSAGE)
    if not pcm or len(pcm) % 2:
        return Ignored(IgnoreReason.INVALID_MESSAGE)
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

    def __init__(self) -> None:
        self._sid_json = "null"
        self._media_head = '{"event":"media","stream_sid":null,"media":{"payload":"'
        self._rate_of_start: SampleRate = 8000

    def parse(self, text: str) -> StreamEvent:
        """One Exotel message → a normalized event; never raises."""
        message = parse_message(text)
        if isinstance(message, StartMessage):
            rate = message.start.media_format.sample_rate
            self._rate_of_start = _RATES.get(str(rate), 8000)
        return to_event(message)

    def bind(self, start: StreamStart) -> None:
        """Address outbound messages to the started stream, at its sample rate."""
        self._sid_json = json.dumps(start.stream_id)
        self._media_head = f'{{"event":"media","stream_sid":{self._sid_json},"media":{{"payload":"'
        self.sample_rate = self._rate_of_start

    def media(self, pcm: bytes) -> str:
        """A ``media`` message playing ``pcm`` (PCM16LE, base64)."""
        payload = binascii.b2a_base64(pcm, newline=False).decode("ascii")
        return (
            f'{{"event":"media","stream_sid":{self._sid_json},"media":{{"payload":"{payload}"}}}}'
        )

    def mark(self, name: str) -> str:
        """A ``mark``; Exotel echoes it once the audio before it has played."""
        body = json.dumps({"name": name})
        return f'{{"event":"mark","stream_sid":{self._sid_json},"mark":{body}}}'

    def clear(self) -> str:
        """``clear``: Exotel drops buffered audio."""
        return f'{{"event":"clear","stream_sid":{self._sid_json}}}'
