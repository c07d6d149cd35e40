"""Exotel's side of a call, as the simulated caller speaks it: Voicebot applet and AgentStream.

Everything here follows Exotel's public documentation ("Working with the Stream
and Voicebot Applet", "AgentStream WebSocket protocol"), not the gateway's code:

- The Voicebot applet's URL may be an HTTPS endpoint that returns the WebSocket
  URL: Exotel requests it (``CallSid``, ``From``, ``To``, ...) with the Basic auth
  credentials written in the URL, and reads ``{"url": "wss://..."}``.
- Exotel opens that WebSocket (Basic auth again from its credentials) and sends
  ``connected``, ``start`` (``stream_sid``, ``call_sid``, ``custom_parameters``
  from the URL's query, ``media_format``), ``media`` (base64 PCM16LE 8 kHz, about
  100 ms each, ``chunk`` and ``timestamp`` as strings), ``dtmf``, ``mark`` (echo
  of a mark once its audio played) and ``stop``. It reads ``media``, ``mark`` and
  ``clear``; agent audio should come in chunks of at least 3,200 bytes in
  multiples of 320 (smaller ones are counted in :attr:`ExotelProtocol.small_chunks`).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx

from voicebus.devkit.caller.errors import CallerError, CallRejectedError
from voicebus.devkit.caller.protocol import (
    ProtocolError,
    ServerClear,
    ServerMark,
    ServerMedia,
    ServerMessage,
    StreamIds,
)
from voicebus.devkit.caller.session import DEFAULT_FROM, DEFAULT_TO, StreamCaller
from voicebus.devkit.caller.timeline import Turn
from voicebus.devkit.caller.twilio import media_socket_url
from voicebus.engines.base import TTSEngine

MIN_CHUNK_BYTES: Final = 3200
CHUNK_MULTIPLE: Final = 320
SAMPLE_RATE: Final = 8000


def new_sid() -> str:
    """An Exotel-shaped SID (32 lowercase hex digits)."""
    return secrets.token_hex(16)


def new_ids() -> StreamIds:
    """Fresh account, call and stream ids."""
    return StreamIds("devkit", new_sid(), new_sid())


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without ``user:password@``, and the credentials it carried."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    bare = urlunsplit(parts._replace(netloc=netloc))
    return bare, (parts.username, parts.password or "")


def with_credentials(url: str, credentials: tuple[str, str] | None) -> str:
    """``url`` with ``user:password@`` put back."""
    if credentials is None:
        return url
    parts = urlsplit(url)
    user, password = (quote(c, safe="") for c in credentials)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))


class ExotelProtocol:
    """AgentStream (Voicebot) for the caller session (see the module docstring)."""

    frames_per_chunk = 5

    def __init__(
        self, ids: StreamIds | None = None, from_number: str = "", to_number: str = ""
    ) -> None:
        self.ids = ids or new_ids()
        self.from_number = from_number
        self.to_number = to_number
        self.small_chunks = 0
        self._seq = 0

    def _message(self, event: str, **body: Any) -> str:
        self._seq += 1
        message = {
            "event": event,
            "sequence_number": str(self._seq),
            "stream_sid": self.ids.stream_sid,
        }
        return json.dumps(message | body, separators=(",", ":"))

    def opening(self, parameters: Mapping[str, str]) -> list[str]:
        """``connected`` then ``start`` with ``parameters`` as its custom parameters."""
        start = {
            "stream_sid": self.ids.stream_sid,
            "call_sid": self.ids.call_sid,
            "account_sid": self.ids.account_sid,
            "from": self.from_number,
            "to": self.to_number,
            "custom_parameters": dict(parameters),
            "media_format": {"encoding": "audio/x-raw", "sample_rate": str(SAMPLE_RATE),
                             "bit_rate": "16"},
        }  # fmt: skip
        return [json.dumps({"event": "connected"}), self._message("start", start=start)]

    def media(self, pcm: bytes, chunk: int, timestamp_ms: int) -> str:
        """``media`` with PCM16LE (``chunk`` and ``timestamp`` as strings)."""
        payload = base64.b64encode(pcm).decode("ascii")
        media = {"chunk": str(chunk), "timestamp": str(timestamp_ms), "payload": payload}
        return self._message("media", media=media)

    def dtmf(self, digit: str) -> str:
        """``dtmf``."""
        return self._message("dtmf", dtmf={"digit": digit, "duration": "100"})

    def mark(self, name: str) -> str:
        """``mark``: the audio before a server mark has played."""
        return self._message("mark", mark={"name": name})

    def stop(self) -> str | None:
        """``stop``."""
        ids = self.ids
        return self._message(
            "stop", stop={"call_sid": ids.call_sid, "account_sid": ids.account_sid,
                          "reason": "callended"},
        )  # fmt: skip

    def parse(self, raw: str | bytes) -> ServerMessage:
        """A server message (``media``, ``mark``, ``clear``) for this stream."""
        if isinstance(raw, bytes):
            raise ProtocolError("binary frame: AgentStream messages are JSON text")
        try:
            message = json.loads(raw)
        except json.JSONDecodeError:
            raise ProtocolError("not JSON") from None
        if not isinstance(message, dict):
            raise ProtocolError("not a JSON object")
        if message.get("stream_sid") != self.ids.stream_sid:
            raise ProtocolError("a message names another stream_sid")
        event = message.get("event")
        if event == "media":
            return ServerMedia(self._audio(message.get("media")))
        if event == "mark":
            mark = message.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                raise ProtocolError("mark.name is missing")
            return ServerMark(name)
        if event == "clear":
            return ServerClear()
        raise ProtocolError(f"unknown event {event!r}")

    def _audio(self, media: object) -> bytes:
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str):
            raise ProtocolError("media.payload is missing")
        try:
            pcm = base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise ProtocolError("media.payload is not base64") from None
        if len(pcm) < MIN_CHUNK_BYTES or len(pcm) % CHUNK_MULTIPLE:
            self.small_chunks += 1
        return pcm


class ExotelCaller(StreamCaller):
    """One simulated inbound Exotel call through a Voicebot applet with a dynamic URL.

    Args:
        gateway_url: where the gateway listens, e.g. ``http://127.0.0.1:8080``.
        credentials: the Basic auth user and password written in the applet's URL.
        agent: the agent id in the applet URL's path.
        context: call-context variables, as ``ctx_<name>`` query parameters of the URL.
        public_url: the gateway's public URL (``VB_GATEWAY_PUBLIC_URL``): stream URLs
            under it are reached on ``gateway_url``. The gateway URL when omitted.
        from_number: the caller's number.
        to_number: the ExoPhone called.
        voice: the TTS engine for :meth:`say_text`.
        on_turn_answered: called when a line's first agent audio is played.
        timeout: bound on the HTTP request and the WebSocket handshake, in seconds.
    """

    def __init__(
        self,
        gateway_url: str,
        credentials: tuple[str, str],
        agent: str,
        context: Mapping[str, str] | None = None,
        *,
        public_url: str | None = None,
        from_number: str = DEFAULT_FROM,
        to_number: str = DEFAULT_TO,
        voice: TTSEngine | None = None,
        on_turn_answered: Callable[[Turn], None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        protocol = ExotelProtocol(new_ids(), from_number, to_number)
        super().__init__(protocol, voice=voice, on_turn_answered=on_turn_answered, timeout=timeout)
        self.gateway_url = gateway_url.rstrip("/")
        self.public_url = (public_url or gateway_url).rstrip("/")
        self.credentials = credentials
        self.agent = agent
        self.context = dict(context or {})
        self.from_number = from_number
        self.to_number = to_number

    async def start(self) -> None:
        """Request the applet URL, then open the WebSocket it returns.

        Raises:
            CallRejectedError: an HTTP error or an answer without a URL.
            CallerError: the gateway could not be reached.
        """
        caller, called = self.from_number, self.to_number
        query = {"CallSid": self.call_sid, "From": caller, "To": called,
                 "CallFrom": caller, "CallTo": called, "Direction": "incoming"}  # fmt: skip
        query |= {f"ctx_{name}": value for name, value in self.context.items()}
        url = f"{self.gateway_url}/telephony/exotel/inbound/{quote(self.agent, safe='')}"
        try:
            async with httpx.AsyncClient(timeout=self._timeout, trust_env=False) as client:
                response = await client.get(f"{url}?{urlencode(query)}", auth=self.credentials)
        except httpx.HTTPError as err:
            raise CallerError(f"cannot reach the gateway at {url}: {err}") from err
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        stream = body.get("url") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(stream, str):
            raise CallRejectedError(
                f"the applet URL answered HTTP {response.status_code} without a stream URL",
                status=response.status_code, body=response.text,
            )  # fmt: skip
        bare, credentials = split_credentials(stream)
        parameters = dict(parse_qsl(urlsplit(bare).query))
        local = media_socket_url(bare, self.public_url, self.gateway_url)
        await self.connect(with_credentials(local, credentials), parameters)


WEBHOOK_USER: Final = "voicebus"
"""The gateway's default Basic auth user for Exotel (``VB_GATEWAY_EXOTEL_WEBHOOK_USER``)."""


def exotel_caller(
    gateway_url: str,
    auth_token: str,
    agent: str,
    context: Mapping[str, str] | None = None,
    **options: Any,
) -> ExotelCaller:
    """An :class:`ExotelCaller` built like the other inbound callers: ``auth_token`` is the
    webhook password (``VB_GATEWAY_EXOTEL_WEBHOOK_PASSWORD``) of the default user."""
    return ExotelCaller(gateway_url, (WEBHOOK_USER, auth_token), agent, context, **options)
