"""Plivo's side of a call, as the simulated caller speaks it: answer webhook, XML, Audio Streaming.

Everything here follows Plivo's public documentation ("Validate requests",
"The Stream element", "Audio streaming reference"), not the gateway's code:

- The answer webhook is a form POST signed with ``X-Plivo-Signature-V3``: the
  plivo SDK's V3 signature over the full URL, the sorted POST parameters and a
  random nonce (``X-Plivo-Signature-V3-Nonce``), keyed by the Auth Token.
- The answer is Plivo XML; ``<Stream>``'s text is the WebSocket URL and its
  ``contentType`` the audio format (μ-law 8 kHz or L16 8/16 kHz).
- Plivo sends ``start`` (``start.callId``, ``start.streamId``, ``mediaFormat``),
  ``media`` (``media.payload`` base64, ``media.chunk``, ``media.timestamp`` in
  wall-clock ms), ``dtmf``, ``playedStream`` (a checkpoint's audio has played),
  ``clearedAudio`` (a clear is done) and ``stop``. It reads ``playAudio``,
  ``checkpoint`` and ``clearAudio``. A clear drops pending checkpoints: they are
  never answered.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from plivo.utils.signature_v3 import construct_post_url, get_signature_v3

from voicebus.devkit.caller.audio import resample
from voicebus.devkit.caller.errors import CallRejectedError
from voicebus.devkit.caller.protocol import (
    ProtocolError,
    ServerClear,
    ServerMark,
    ServerMedia,
    ServerMessage,
    StreamIds,
    StreamTarget,
    post_form,
)
from voicebus.devkit.caller.session import DEFAULT_FROM, DEFAULT_TO, StreamCaller
from voicebus.devkit.caller.timeline import Turn
from voicebus.devkit.caller.twilio import media_socket_url
from voicebus.engines.base import TTSEngine
from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16

SIGNATURE_HEADER: Final = "X-Plivo-Signature-V3"
NONCE_HEADER: Final = "X-Plivo-Signature-V3-Nonce"
MULAW_8K: Final = "audio/x-mulaw;rate=8000"
CALLER_RATE: Final = 8000


def new_uuid() -> str:
    """A Plivo-shaped call or stream id (a UUID)."""
    return str(uuid.uuid4())


def new_nonce() -> str:
    """A random 20-digit nonce, as Plivo sends with each signature."""
    return "".join(secrets.choice("0123456789") for _ in range(20))


def inbound_url(
    base_url: str,
    provider: str,
    agent: str,
    query: Mapping[str, str],
    tenant: str | None = None,
) -> str:
    """``{base}/telephony/{provider}[/{tenant}]/inbound/{agent}`` with ``query`` (the context)."""
    scope = f"/{quote(tenant, safe='')}" if tenant else ""
    url = f"{base_url.rstrip('/')}/telephony/{provider}{scope}/inbound/{quote(agent, safe='')}"
    return f"{url}?{urlencode(sorted(query.items()))}" if query else url


def answer_params(*, call_uuid: str, from_number: str, to_number: str) -> dict[str, str]:
    """The form fields Plivo posts to the answer URL of an inbound call (common subset)."""
    return {
        "CallUUID": call_uuid,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "Event": "StartApp",
        "From": from_number,
        "To": to_number,
        "CallerName": from_number,
    }


def sign(auth_token: str, url: str, params: Mapping[str, str], nonce: str) -> str:
    """``X-Plivo-Signature-V3`` for a form POST to ``url``, computed by the plivo SDK."""
    signed = construct_post_url(url, dict(params)).decode()
    return str(get_signature_v3(auth_token.encode(), signed, nonce.encode()).decode())


def parse_answer(text: str) -> tuple[StreamTarget | None, list[str]]:
    """The ``<Stream>`` of a Plivo XML answer (None if it has none) and its ``<Speak>`` texts.

    Raises:
        ProtocolError: not XML or not a ``<Response>``.
    """
    try:
        root = ET.fromstring(text)  # noqa: S314 - the gateway under test answered it
    except ET.ParseError as err:
        raise ProtocolError(f"the answer is not XML: {err}") from None
    if root.tag != "Response":
        raise ProtocolError(f"the answer's root is <{root.tag}>, not <Response>")
    says = [(node.text or "").strip() for node in root.iter("Speak")]
    node = root.find("Stream")
    if node is None:
        return None, says
    url = (node.text or "").strip()
    return (
        StreamTarget(
            url=url,
            parameters=dict(parse_qsl(urlsplit(url).query)),
            content_type=node.get("contentType"),
            extra_headers=node.get("extraHeaders"),
        ),
        says,
    )


async def place(
    *,
    provider: str,
    gateway_url: str,
    public_url: str,
    agent: str,
    context: Mapping[str, str],
    form: Mapping[str, str],
    headers_for: Any,
    timeout: float,
    tenant: str | None = None,
) -> StreamTarget:
    """Post a signed answer webhook; the stream its XML answer names.

    Args:
        headers_for: ``headers_for(signed_url) -> headers`` signs the request.
        tenant: post to that tenant's webhook (checked with its account); the
            gateway's default tenant when None.

    Raises:
        CallRejectedError: an HTTP error, unreadable XML, or no ``<Stream>``.
        CallerError: the gateway could not be reached.
    """
    query = {f"ctx_{name}": value for name, value in context.items()}
    signed_url = inbound_url(public_url, provider, agent, query, tenant)
    body = await post_form(
        inbound_url(gateway_url, provider, agent, query, tenant),
        form,
        headers_for(signed_url),
        timeout,
    )
    try:
        target, says = parse_answer(body)
    except ProtocolError as err:
        raise CallRejectedError(str(err), status=200, body=body) from None
    if target is None:
        said = " ".join(says)
        raise CallRejectedError(f"no stream (it said: {said!r})", status=200, body=body)
    return target


class PlivoProtocol:
    """Plivo Audio Streaming for the caller session (:class:`~.protocol.CallerProtocol`).

    Args:
        content_type: the format the answer's ``<Stream contentType>`` asked for.
        ids: the call's ids; fresh ones when omitted.
    """

    frames_per_chunk = 1

    def __init__(
        self,
        content_type: str | None = None,
        ids: StreamIds | None = None,
        extra_headers: str | None = None,
    ) -> None:
        self.ids = ids or new_ids()
        self.extra_headers = extra_headers or ""
        """The answer's ``extraHeaders``, sent back in ``start`` (Plivo's documented field)."""
        self.encoding, self.rate = "audio/x-mulaw", CALLER_RATE
        self.set_format(content_type or MULAW_8K)
        self._seq = 0
        self._epoch_ms = int(time.time() * 1000)

    def set_format(self, content_type: str) -> None:
        """Speak the format the answer's ``<Stream contentType>`` asked for.

        Raises:
            ProtocolError: a format Plivo does not stream in.
        """
        encoding, _, rate = content_type.partition(";rate=")
        if encoding not in ("audio/x-mulaw", "audio/x-l16") or rate not in ("8000", "16000"):
            raise ProtocolError(f"unsupported contentType {content_type!r}")
        if encoding == "audio/x-mulaw" and rate != "8000":
            raise ProtocolError("μ-law streams are 8 kHz")
        self.encoding, self.rate = encoding, int(rate)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _message(self, event: str, **body: Any) -> str:
        message = {"event": event, "sequenceNumber": self._next(), "streamId": self.ids.stream_sid}
        return json.dumps({**message, **body}, separators=(",", ":"))

    def opening(self, parameters: Mapping[str, str]) -> list[str]:
        """``start``; the stream parameters reached the gateway in the URL (the token, where
        the answer put it in ``extraHeaders``, comes back here as ``extra_headers``)."""
        ids = self.ids
        start = {
            "event": "start",
            "sequenceNumber": self._next(),
            "start": {
                "callId": ids.call_sid,
                "streamId": ids.stream_sid,
                "accountId": ids.account_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": self.encoding, "sampleRate": self.rate},
            },
            "extra_headers": self.extra_headers,
        }
        return [json.dumps(start, separators=(",", ":"))]

    def encode_audio(self, pcm: bytes) -> bytes:
        """PCM16LE 8 kHz → the stream's wire format."""
        if self.rate != CALLER_RATE:
            pcm = resample(pcm, CALLER_RATE, self.rate)
        return pcm16_to_ulaw(pcm) if self.encoding == "audio/x-mulaw" else pcm

    def decode_audio(self, audio: bytes) -> bytes:
        """The stream's wire format → PCM16LE 8 kHz."""
        pcm = ulaw_to_pcm16(audio) if self.encoding == "audio/x-mulaw" else audio
        return resample(pcm, self.rate, CALLER_RATE) if self.rate != CALLER_RATE else pcm

    def media(self, pcm: bytes, chunk: int, timestamp_ms: int) -> str:
        """``media``: Plivo's timestamp is wall-clock milliseconds."""
        payload = base64.b64encode(self.encode_audio(pcm)).decode("ascii")
        media = {
            "track": "inbound",
            "timestamp": str(self._epoch_ms + timestamp_ms),
            "chunk": chunk,
            "payload": payload,
        }
        return self._message("media", media=media, extra_headers="")

    def dtmf(self, digit: str) -> str:
        """``dtmf``."""
        return self._message("dtmf", dtmf={"track": "inbound", "digit": digit}, extra_headers="")

    def mark(self, name: str) -> str:
        """``playedStream``: the checkpoint's audio has played."""
        return self._message("playedStream", name=name)

    def cleared(self, pending: list[str]) -> list[str]:
        """``clearedAudio``; the dropped checkpoints are not answered."""
        return [self._message("clearedAudio")]

    def stop(self) -> str | None:
        """``stop``."""
        ids = self.ids
        return self._message("stop", stop={"callId": ids.call_sid, "accountId": ids.account_sid})

    def parse(self, raw: str | bytes) -> ServerMessage:
        """``playAudio`` / ``checkpoint`` / ``clearAudio``, checked to be for this stream.

        Raises:
            ProtocolError: anything else.
        """
        if isinstance(raw, bytes):
            raise ProtocolError("binary frame: stream messages are JSON text")
        try:
            message = json.loads(raw)
        except json.JSONDecodeError:
            raise ProtocolError("not JSON") from None
        if not isinstance(message, dict):
            raise ProtocolError("not a JSON object")
        event = message.get("event")
        stream = message.get("streamId")
        if stream is not None and stream != self.ids.stream_sid:
            raise ProtocolError("a message names another streamId")
        if event == "playAudio":
            return ServerMedia(self._play_audio(message.get("media")))
        if stream is None:
            raise ProtocolError(f"{event!r} message without streamId")
        if event == "checkpoint":
            name = message.get("name")
            if not isinstance(name, str) or not name:
                raise ProtocolError("checkpoint without a name")
            return ServerMark(name)
        if event == "clearAudio":
            return ServerClear()
        raise ProtocolError(f"unknown event {event!r}")

    def _play_audio(self, media: object) -> bytes:
        if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
            raise ProtocolError("playAudio without media.payload")
        if media.get("contentType") != self.encoding or media.get("sampleRate") != self.rate:
            raise ProtocolError("playAudio in another format than the stream's")
        try:
            audio = base64.b64decode(media["payload"], validate=True)
        except binascii.Error:
            raise ProtocolError("playAudio payload is not base64") from None
        if self.encoding == "audio/x-l16" and len(audio) % 2:
            raise ProtocolError("odd L16 payload")
        return self.decode_audio(audio)


def new_ids() -> StreamIds:
    """Plivo-shaped ids: an auth id (``MA…``), UUID call and stream ids."""
    return StreamIds("MA" + secrets.token_hex(9).upper(), new_uuid(), new_uuid())


class PlivoCaller(StreamCaller):
    """One simulated inbound Plivo call: signed answer webhook, then the stream its XML names.

    Args:
        gateway_url: where the gateway listens, e.g. ``http://127.0.0.1:8080``.
        auth_token: the Auth Token the gateway checks signatures with.
        agent: the agent id in the webhook path.
        context: call-context variables, sent as ``ctx_<name>=<value>`` in the webhook URL.
        public_url: the base URL the gateway validates signatures against.
        from_number: the caller's number.
        to_number: the number called.
        voice: the TTS engine for :meth:`say_text`.
        on_turn_answered: called when a line's first agent audio is played.
        timeout: bound on the webhook request and the WebSocket handshake, in seconds.
        tenant: call that tenant's webhook (``/telephony/plivo/<tenant>/inbound/...``).
    """

    provider = "plivo"

    def __init__(
        self,
        gateway_url: str,
        auth_token: str,
        agent: str,
        context: Mapping[str, str] | None = None,
        *,
        public_url: str | None = None,
        from_number: str = DEFAULT_FROM,
        to_number: str = DEFAULT_TO,
        voice: TTSEngine | None = None,
        on_turn_answered: Callable[[Turn], None] | None = None,
        timeout: float = 10.0,
        tenant: str | None = None,
    ) -> None:
        super().__init__(
            self.new_protocol(), voice=voice, on_turn_answered=on_turn_answered, timeout=timeout
        )
        self.tenant = tenant
        self.gateway_url = gateway_url.rstrip("/")
        self.public_url = (public_url or gateway_url).rstrip("/")
        self.agent = agent
        self.context = dict(context or {})
        self.from_number = from_number
        self.to_number = to_number
        self.target: StreamTarget | None = None
        self._auth_token = auth_token

    def new_protocol(self) -> PlivoProtocol:
        """The stream protocol, with fresh ids."""
        return PlivoProtocol()

    def headers(self, signed_url: str, form: Mapping[str, str]) -> dict[str, str]:
        """The signature headers of the answer webhook."""
        nonce = new_nonce()
        return {
            SIGNATURE_HEADER: sign(self._auth_token, signed_url, form, nonce),
            NONCE_HEADER: nonce,
        }

    async def start(self) -> None:
        """Post the signed answer webhook, open the media socket, send ``start``.

        Raises:
            CallRejectedError: the webhook was refused or answered without a stream.
            CallerError: the gateway could not be reached.
        """
        form = answer_params(
            call_uuid=self.call_sid, from_number=self.from_number, to_number=self.to_number
        )
        self.target = await place(
            provider=self.provider, gateway_url=self.gateway_url, public_url=self.public_url,
            agent=self.agent, context=self.context, form=form,
            headers_for=lambda url: self.headers(url, form), timeout=self._timeout,
            tenant=self.tenant,
        )  # fmt: skip
        assert isinstance(self.protocol, PlivoProtocol)
        self.protocol.extra_headers = self.target.extra_headers or ""
        if self.target.content_type:
            try:
                self.protocol.set_format(self.target.content_type)
            except ProtocolError as err:
                raise CallRejectedError(str(err), status=200, body="") from None
        url = media_socket_url(self.target.url, self.public_url, self.gateway_url)
        await self.connect(url, self.target.parameters)
