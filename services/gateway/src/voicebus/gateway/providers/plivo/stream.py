"""Plivo Audio Streaming over a bidirectional ``<Stream>`` WebSocket.

In: ``start`` (call and stream ids, the negotiated ``mediaFormat``), ``media``
(base64 audio, ~20 ms each), ``dtmf``, ``playedStream`` (the echo of a
``checkpoint`` once the audio queued before it has played), ``clearedAudio``
(the acknowledgement of a ``clearAudio``) and ``stop``. Out: ``playAudio``
(with the stream's ``contentType`` and ``sampleRate``), ``checkpoint`` and
``clearAudio``.

Audio is μ-law at 8 kHz or 16-bit linear PCM (little-endian) at 8 or 16 kHz,
whichever the answer's ``contentType`` asked for; the ``start`` message says
which, and the codec follows it. Unlike Twilio, a ``clearAudio`` does not
return the checkpoints it dropped: they are simply never echoed.

Vobiz speaks the same protocol (see ``providers/vobiz``), so the codec is
parameterized by the events a provider sends rather than written twice.

``media`` and ``playedStream`` (nearly every message) are decoded by msgspec
straight into typed structs; the rest, and anything malformed, by the pydantic
models, which tell why a message is ignored. Outbound messages are bytes templates.
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Annotated, Final, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voicebus.gateway.metrics import IgnoreReason
from voicebus.gateway.parameters import TOKEN
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

MULAW: Final = "audio/x-mulaw"
L16: Final = "audio/x-l16"
INBOUND_TRACK: Final = "inbound"
MAX_CHUNK_MS: Final = 1000
"""Longest audio accepted in one media message (providers send 20 ms)."""
TOKEN_HEADER: Final = "vbtoken"  # noqa: S105 - a parameter name, not a secret
"""Name of the stream token in the answer's ``extraHeaders`` (which allow only letters and
digits: the token's ``<issued>.<hex>`` travels as ``<issued>x<hex>``)."""
_TOKEN_IN_HEADER: Final = re.compile(r"^([0-9]{1,12})x([0-9a-f]{64})$")


def token_header(token: str) -> str:
    """``extraHeaders`` carrying the stream token ``<issued>.<hex>`` (letters and digits)."""
    return f"{TOKEN_HEADER}={token.replace('.', 'x', 1)}"


def token_from_headers(extra_headers: str | None) -> dict[str, str]:
    """The stream token in a start's ``extra_headers`` (``k=v`` pairs, ``;`` or ``,``)."""
    for pair in re.split(r"[;,]", extra_headers or ""):
        name, _, value = pair.strip().partition("=")
        match = _TOKEN_IN_HEADER.fullmatch(value.strip())
        if name.strip() == TOKEN_HEADER and match is not None:
            return {TOKEN: f"{match.group(1)}.{match.group(2)}"}
    return {}


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class MediaFormat(_Message):
    """Audio format of the stream, as negotiated by the answer's ``contentType``."""

    encoding: Literal["audio/x-mulaw", "audio/x-l16"] = MULAW
    sample_rate: Literal[8000, 16000] = Field(default=8000, alias="sampleRate")


class StartInfo(_Message):
    """Metadata of a started stream."""

    call_id: str | None = Field(default=None, alias="callId", max_length=128)
    stream_id: str = Field(alias="streamId", min_length=1, max_length=128)
    account_id: str | None = Field(default=None, alias="accountId")
    tracks: list[str] = Field(default_factory=list)
    media_format: MediaFormat = Field(default_factory=MediaFormat, alias="mediaFormat")


class StartMessage(_Message):
    """Sent once, when the stream connects."""

    event: Literal["start"]
    sequence_number: int | None = Field(default=None, alias="sequenceNumber")
    start: StartInfo
    extra_headers: str | None = Field(default=None, max_length=1024)
    """The answer's ``extraHeaders``, as ``key=value`` pairs separated by ``;``."""


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
    stream_id: str | None = Field(default=None, alias="streamId")
    media: MediaChunk


class DtmfInfo(_Message):
    """A key the caller pressed."""

    digit: str = Field(min_length=1, max_length=1)
    track: str | None = None


class DtmfMessage(_Message):
    """The caller pressed a key."""

    event: Literal["dtmf"]
    stream_id: str | None = Field(default=None, alias="streamId")
    dtmf: DtmfInfo


class PlayedStreamMessage(_Message):
    """Echo of our checkpoint: the audio queued before it has played."""

    event: Literal["playedStream"]
    stream_id: str | None = Field(default=None, alias="streamId")
    name: str = Field(min_length=1, max_length=256)


class ClearedAudioMessage(_Message):
    """Acknowledgement of our ``clearAudio``."""

    event: Literal["clearedAudio"]
    stream_id: str | None = Field(default=None, alias="streamId")


class StopMessage(_Message):
    """The stream ended (Plivo only; Vobiz just closes the socket)."""

    event: Literal["stop"]
    stream_id: str | None = Field(default=None, alias="streamId")


AnyMessage = Annotated[
    StartMessage
    | MediaMessage
    | DtmfMessage
    | PlayedStreamMessage
    | ClearedAudioMessage
    | StopMessage,
    Field(discriminator="event"),
]
"""Any message a Plivo-style provider sends on the stream."""

PLIVO_EVENTS: Final = frozenset({"start", "media", "dtmf", "playedStream", "clearedAudio", "stop"})
_ANY: Final[TypeAdapter[AnyMessage]] = TypeAdapter(AnyMessage)


class _FastMedia(msgspec.Struct):
    payload: str
    track: str = INBOUND_TRACK
    chunk: int | None = None
    timestamp: int | None = None


class _FastMediaMessage(msgspec.Struct, tag_field="event", tag="media"):
    media: _FastMedia


class _FastPlayedMessage(msgspec.Struct, tag_field="event", tag="playedStream"):
    name: MarkName


# strict=False: the timestamp comes as a string of digits.
_FAST: Final = msgspec.json.Decoder(_FastMediaMessage | _FastPlayedMessage, strict=False)


def parse_message(text: str | bytes, events: frozenset[str]) -> AnyMessage | Ignored:
    """Parse one message into its model, or say why it is ignored (the slow path).

    Args:
        text: the WebSocket text message.
        events: the events this provider sends; others are unknown.
    """
    try:
        raw = json.loads(text)
    except ValueError:
        return Ignored(IgnoreReason.MALFORMED_JSON)
    if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
        return Ignored(IgnoreReason.INVALID_MESSAGE)
    if raw["event"] not in events:
        return Ignored(IgnoreReason.UNKNOWN_EVENT)
    try:
        return _ANY.validate_python(raw)
    except ValidationError:
        return Ignored(IgnoreReason.INVALID_MESSAGE)


class PlivoStyleCodec:
    """The Plivo Audio Streaming protocol for one WebSocket (see the module docstring).

    Args:
        events: the events the provider sends (Vobiz has no ``stop``).
    """

    binary_media = False

    def __init__(self, events: frozenset[str] = PLIVO_EVENTS) -> None:
        self._events = events
        self.sample_rate: SampleRate = 8000
        self._encoding = MULAW
        self._max_payload = MAX_CHUNK_MS * 8
        self._first_ts: int | None = None
        self._head = b""
        self._checkpoint_head = b""
        self._clear = b""

    def parse(self, data: Payload) -> StreamEvent:
        """One provider message → a normalized event; never raises."""
        try:
            fast = _FAST.decode(data)
        except msgspec.DecodeError:  # not media nor a checkpoint echo: the slow path says which
            return self._parse_slow(bytes(data))
        if isinstance(fast, _FastMediaMessage):
            return self._media_event(fast.media)
        return MarkPlayed(fast.name)

    def _parse_slow(self, text: bytes) -> StreamEvent:
        message = parse_message(text, self._events)
        match message:
            case MediaMessage():
                return self._media_event(message.media)
            case PlayedStreamMessage():
                return MarkPlayed(message.name)
            case DtmfMessage():
                return DtmfIn(message.dtmf.digit)
            case StartMessage():
                info = message.start
                self._use_format(info.media_format)
                # The token rides in extraHeaders (not the URL) where the answer put it there.
                params = token_from_headers(message.extra_headers)
                return StreamStart(info.stream_id, info.call_id, params)
            case StopMessage():
                return StreamStop()
            case ClearedAudioMessage():
                return StreamInfo()
            case Ignored():
                return message

    def _use_format(self, media_format: MediaFormat) -> None:
        """Decode and encode audio as the ``start`` message says (before :meth:`bind`)."""
        self._encoding = media_format.encoding
        # μ-law is 8 kHz only; L16 may be 8 or 16 kHz.
        rate: SampleRate = media_format.sample_rate if self._encoding == L16 else 8000
        self.sample_rate = rate
        bytes_per_ms = rate // 1000 * (2 if self._encoding == L16 else 1)
        self._max_payload = MAX_CHUNK_MS * bytes_per_ms

    def _media_event(self, chunk: MediaChunk | _FastMedia) -> MediaIn | Ignored:
        if chunk.track != INBOUND_TRACK:
            return Ignored(IgnoreReason.UNEXPECTED_TRACK)
        try:
            audio = binascii.a2b_base64(chunk.payload, strict_mode=True)
        except binascii.Error:
            return Ignored(IgnoreReason.INVALID_MESSAGE)
        if not audio:
            return Ignored(IgnoreReason.INVALID_MESSAGE)
        if len(audio) > self._max_payload:
            return Ignored(IgnoreReason.OVERSIZE)
        if self._encoding == L16:
            if len(audio) % 2:
                return Ignored(IgnoreReason.INVALID_MESSAGE)
            pcm = audio
        else:
            pcm = ulaw_to_pcm16(audio)
        return MediaIn(pcm, chunk.chunk, self._stream_ms(chunk.timestamp))

    def _stream_ms(self, timestamp: int | None) -> int | None:
        """Milliseconds since the first media message: the provider sends wall-clock ms."""
        if timestamp is None:
            return None
        if self._first_ts is None:
            self._first_ts = timestamp
        return timestamp - self._first_ts

    def bind(self, start: StreamStart) -> None:
        """Address outbound messages to the started stream, in its audio format."""
        sid = json_string(start.stream_id)
        media = json.dumps({"contentType": self._encoding, "sampleRate": self.sample_rate})
        self._head = b'{"event":"playAudio","streamId":%b,"media":%b,"payload":"' % (
            sid,
            media[:-1].encode(),
        )
        self._checkpoint_head = b'{"event":"checkpoint","streamId":%b,"name":' % sid
        self._clear = b'{"event":"clearAudio","streamId":%b}' % sid

    def media(self, pcm: bytes) -> bytes:
        """A ``playAudio`` message playing ``pcm`` (PCM16LE at :attr:`sample_rate`)."""
        audio = pcm if self._encoding == L16 else pcm16_to_ulaw(pcm)
        payload = binascii.b2a_base64(audio, newline=False)
        return b'%b%b"}}' % (self._head, payload)

    def mark(self, name: str) -> bytes:
        """A ``checkpoint``: answered by ``playedStream`` once the audio before it played."""
        return b"%b%b}" % (self._checkpoint_head, json_string(name))

    def clear(self) -> bytes:
        """A ``clearAudio``: the provider drops audio queued and not yet played."""
        return self._clear


class PlivoCodec(PlivoStyleCodec):
    """Plivo's stream protocol for one WebSocket."""

    def __init__(self) -> None:
        super().__init__(PLIVO_EVENTS)
