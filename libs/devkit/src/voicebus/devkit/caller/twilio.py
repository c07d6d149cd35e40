"""Twilio's side of an inbound call, as pure functions: webhook, TwiML, Media Streams messages.

Everything here follows Twilio's public documentation ("Media Streams - WebSocket
Messages", "TwiML <Stream>", "Webhooks security"), not the gateway's code, so the
simulated caller and the gateway meet at the spec:

- Messages from Twilio: ``connected`` (no sequence number), then ``start``, ``media``,
  ``dtmf``, ``mark`` and ``stop``, each with ``event``, ``sequenceNumber`` (a string
  counting from "1") and ``streamSid``. ``media.chunk`` (a string counting from "1")
  and ``media.timestamp`` (milliseconds since the stream started, a string) order
  the audio; ``media.payload`` is base64 μ-law 8 kHz mono without headers.
- Messages to Twilio (bidirectional ``<Connect><Stream>`` only): ``media``
  (``media.payload``), ``mark`` (``mark.name``, echoed back once the audio sent
  before it has played, or when a ``clear`` drops it) and ``clear``.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

from voicebus.devkit.caller import protocol
from voicebus.devkit.caller.protocol import ProtocolError, StreamIds
from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16

SIGNATURE_HEADER: Final = "X-Twilio-Signature"
API_VERSION: Final = "2010-04-01"
MEDIA_ENCODING: Final = "audio/x-mulaw"
MEDIA_SAMPLE_RATE: Final = 8000
MEDIA_CHANNELS: Final = 1
INBOUND_TRACK: Final = "inbound"
DTMF_TRACK: Final = "inbound_track"
PROTOCOL: Final = "Call"
PROTOCOL_VERSION: Final = "1.0.0"


class TwimlError(ValueError):
    """The webhook answer is not TwiML this caller understands."""


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: a two-letter prefix and 32 lowercase hex digits (``CA…``, ``MZ…``)."""
    return prefix + secrets.token_hex(16)


# -- the inbound webhook ----------------------------------------------------


def webhook_url(base_url: str, agent: str, query: Mapping[str, str] | None = None) -> str:
    """``{base}/telephony/twilio/inbound/{agent}``, with ``query`` as its query string.

    Twilio signs the full URL it requests, query string included, so the same
    function builds the URL that is posted to and the URL that is signed.
    """
    url = f"{base_url.rstrip('/')}/telephony/twilio/inbound/{quote(agent, safe='')}"
    if query:
        url += "?" + urlencode(sorted(query.items()))
    return url


def context_query(context: Mapping[str, str]) -> dict[str, str]:
    """Call-context variables as webhook query parameters: ``ctx_<name>=<value>``.

    Twilio posts to the webhook URL configured on the number, query string and all;
    that is where an inbound call's context comes from.
    """
    return {f"ctx_{name}": value for name, value in context.items()}


def webhook_params(
    *,
    account_sid: str,
    call_sid: str,
    from_number: str,
    to_number: str,
    call_status: str = "ringing",
) -> dict[str, str]:
    """The form fields Twilio posts when an inbound call arrives (the common subset)."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call_sid,
        "CallStatus": call_status,
        "Called": to_number,
        "Caller": from_number,
        "Direction": "inbound",
        "From": from_number,
        "To": to_number,
    }


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """``X-Twilio-Signature`` for a form POST to ``url``, as Twilio computes it."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


# -- the TwiML answer -------------------------------------------------------


@dataclass(frozen=True)
class StreamInstruction:
    """A ``<Connect><Stream url=…>`` with its ``<Parameter name value>`` children."""

    url: str
    parameters: dict[str, str] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True)
class TwimlAnswer:
    """What the webhook answered, as far as a simulated caller cares."""

    stream: StreamInstruction | None
    says: tuple[str, ...] = ()
    hangup: bool = False
    reject: bool = False


def parse_twiml(text: str) -> TwimlAnswer:
    """Parse a ``<Response>``: its ``<Connect><Stream>``, ``<Say>`` texts and ``<Hangup/>``.

    Raises:
        TwimlError: not XML, not a ``<Response>``, or a ``<Stream>`` without a URL.
    """
    try:
        # The TwiML comes from the gateway this caller is testing; expat does not
        # resolve external entities, and the document is a few hundred bytes.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as err:
        raise TwimlError(f"the answer is not XML: {err}") from None
    if root.tag != "Response":
        raise TwimlError(f"the answer's root is <{root.tag}>, not <Response>")
    stream: StreamInstruction | None = None
    says: list[str] = []
    for verb in root:
        if verb.tag == "Connect":
            for noun in verb:
                if noun.tag == "Stream" and stream is None:
                    stream = _stream(noun)
        elif verb.tag == "Say":
            says.append((verb.text or "").strip())
    return TwimlAnswer(
        stream=stream,
        says=tuple(says),
        hangup=root.find("Hangup") is not None,
        reject=root.find("Reject") is not None,
    )


def _stream(node: ET.Element) -> StreamInstruction:
    url = node.get("url")
    if not url:
        raise TwimlError("<Stream> has no url attribute")
    params: dict[str, str] = {}
    for child in node:
        if child.tag == "Parameter":
            name = child.get("name")
            if name is None:
                raise TwimlError("<Parameter> has no name attribute")
            params[name] = child.get("value", "")
    return StreamInstruction(url=url, parameters=params, name=node.get("name"))


def media_socket_url(stream_url: str, public_url: str, gateway_url: str) -> str:
    """Where to open the media socket the TwiML names.

    A stream URL under the gateway's public address (a tunnel, a load balancer) is
    reached on the gateway directly, as a simulated caller runs next to it; any
    other URL is followed as Twilio would. ``http`` maps to ``ws``, ``https`` to ``wss``.
    """
    public = _ws_base(public_url)
    if stream_url == public or stream_url.startswith(public + "/"):
        return _ws_base(gateway_url) + stream_url[len(public) :]
    return stream_url


def _ws_base(http_url: str) -> str:
    parts = urlsplit(http_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


# -- messages from Twilio ---------------------------------------------------


def connected_message() -> dict[str, Any]:
    """The first message on the socket; it carries no sequence number."""
    return {"event": "connected", "protocol": PROTOCOL, "version": PROTOCOL_VERSION}


def start_message(
    *,
    sequence_number: int,
    stream_sid: str,
    account_sid: str,
    call_sid: str,
    custom_parameters: Mapping[str, str],
) -> dict[str, Any]:
    """``start``: stream metadata, sent once right after ``connected``."""
    return {
        "event": "start",
        "sequenceNumber": str(sequence_number),
        "start": {
            "accountSid": account_sid,
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": [INBOUND_TRACK],
            "customParameters": dict(custom_parameters),
            "mediaFormat": {
                "encoding": MEDIA_ENCODING,
                "sampleRate": MEDIA_SAMPLE_RATE,
                "channels": MEDIA_CHANNELS,
            },
        },
        "streamSid": stream_sid,
    }


def media_message(
    *, sequence_number: int, stream_sid: str, chunk: int, timestamp_ms: int, ulaw: bytes
) -> dict[str, Any]:
    """``media``: one chunk of caller audio (μ-law bytes, base64 on the wire)."""
    return {
        "event": "media",
        "sequenceNumber": str(sequence_number),
        "media": {
            "track": INBOUND_TRACK,
            "chunk": str(chunk),
            "timestamp": str(timestamp_ms),
            "payload": base64.b64encode(ulaw).decode("ascii"),
        },
        "streamSid": stream_sid,
    }


def dtmf_message(*, sequence_number: int, stream_sid: str, digit: str) -> dict[str, Any]:
    """``dtmf``: the caller pressed a key."""
    return {
        "event": "dtmf",
        "streamSid": stream_sid,
        "sequenceNumber": str(sequence_number),
        "dtmf": {"track": DTMF_TRACK, "digit": digit},
    }


def mark_message(*, sequence_number: int, stream_sid: str, name: str) -> dict[str, Any]:
    """``mark``: the echo of a server mark whose audio has played (or was cleared)."""
    return {
        "event": "mark",
        "sequenceNumber": str(sequence_number),
        "streamSid": stream_sid,
        "mark": {"name": name},
    }


def stop_message(
    *, sequence_number: int, stream_sid: str, account_sid: str, call_sid: str
) -> dict[str, Any]:
    """``stop``: the stream ended (the caller hung up)."""
    return {
        "event": "stop",
        "sequenceNumber": str(sequence_number),
        "stop": {"accountSid": account_sid, "callSid": call_sid},
        "streamSid": stream_sid,
    }


def encode(message: Mapping[str, Any]) -> str:
    """A message as the JSON text frame Twilio sends."""
    return json.dumps(message, separators=(",", ":"))


# -- messages to Twilio -----------------------------------------------------


@dataclass(frozen=True)
class ServerMedia:
    """Audio to play to the caller (μ-law 8 kHz)."""

    stream_sid: str
    ulaw: bytes


@dataclass(frozen=True)
class ServerMark:
    """A named point in the audio sent so far."""

    stream_sid: str
    name: str


@dataclass(frozen=True)
class ServerClear:
    """Drop every buffered, unplayed audio chunk."""

    stream_sid: str


ServerMessage = ServerMedia | ServerMark | ServerClear


def parse_server_message(raw: str | bytes) -> ServerMessage:
    """Parse one frame the server sent on the media socket.

    Raises:
        ProtocolError: a binary frame, not JSON, or an unknown or incomplete message.
    """
    if isinstance(raw, bytes):
        raise ProtocolError("binary frame: Media Streams messages are JSON text")
    try:
        message = json.loads(raw)
    except json.JSONDecodeError:
        raise ProtocolError("not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    event = message.get("event")
    stream_sid = message.get("streamSid")
    if not isinstance(stream_sid, str) or not stream_sid:
        raise ProtocolError(f"{event!r} message without streamSid")
    if event == "media":
        payload = _field(message, "media", "payload")
        try:
            ulaw = base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise ProtocolError("media.payload is not base64") from None
        return ServerMedia(stream_sid, ulaw)
    if event == "mark":
        return ServerMark(stream_sid, _field(message, "mark", "name"))
    if event == "clear":
        return ServerClear(stream_sid)
    raise ProtocolError(f"unknown event {event!r}")


def _field(message: Mapping[str, Any], outer: str, inner: str) -> str:
    body = message.get(outer)
    value = body.get(inner) if isinstance(body, dict) else None
    if not isinstance(value, str):
        raise ProtocolError(f"{outer}.{inner} is missing or not a string")
    return value


class TwilioProtocol:
    """Media Streams for the caller session (:class:`~.protocol.CallerProtocol`)."""

    frames_per_chunk = 1

    def __init__(self, ids: StreamIds | None = None) -> None:
        self.ids = ids or StreamIds(new_sid("AC"), new_sid("CA"), new_sid("MZ"))
        self._seq = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def opening(self, parameters: Mapping[str, str]) -> list[str]:
        """``connected`` then ``start`` with ``parameters`` as its custom parameters."""
        ids = self.ids
        start = start_message(
            sequence_number=self._next(), stream_sid=ids.stream_sid,
            account_sid=ids.account_sid, call_sid=ids.call_sid, custom_parameters=parameters,
        )  # fmt: skip
        return [encode(connected_message()), encode(start)]

    def media(self, pcm: bytes, chunk: int, timestamp_ms: int) -> str:
        """μ-law ``media``."""
        return encode(media_message(
            sequence_number=self._next(), stream_sid=self.ids.stream_sid, chunk=chunk,
            timestamp_ms=timestamp_ms, ulaw=pcm16_to_ulaw(pcm),
        ))  # fmt: skip

    def dtmf(self, digit: str) -> str:
        """``dtmf``."""
        sid = self.ids.stream_sid
        return encode(dtmf_message(sequence_number=self._next(), stream_sid=sid, digit=digit))

    def mark(self, name: str) -> str:
        """``mark`` echo."""
        sid = self.ids.stream_sid
        return encode(mark_message(sequence_number=self._next(), stream_sid=sid, name=name))

    def stop(self) -> str:
        """``stop``."""
        ids = self.ids
        return encode(stop_message(
            sequence_number=self._next(), stream_sid=ids.stream_sid,
            account_sid=ids.account_sid, call_sid=ids.call_sid,
        ))  # fmt: skip

    def parse(self, raw: str | bytes) -> protocol.ServerMessage:
        """A server message, checked to be for this stream."""
        message = parse_server_message(raw)
        if message.stream_sid != self.ids.stream_sid:
            raise ProtocolError("a message names another streamSid")
        match message:
            case ServerMedia(ulaw=ulaw):
                return protocol.ServerMedia(ulaw_to_pcm16(ulaw))
            case ServerMark(name=name):
                return protocol.ServerMark(name)
            case ServerClear():
                return protocol.ServerClear()
