"""A minimal fake of Twilio's counterpart — the gateway's webhook and media socket — for tests.

It answers a signed webhook with TwiML built by the twilio SDK, greets the caller,
detects the end of each caller line with a crude level detector, answers with
audio followed by marks (after every 5th frame and at the end), sends ``clear``
when the caller talks over it, and can hang up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse
from websockets.asyncio.server import ServerConnection, serve

from voicebus.devkit.caller.audio import FRAME_BYTES, last_audible, tone
from voicebus.devkit.caller.twilio import encode
from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16

TOKEN = "test-auth-token"
LOUD = 500


@dataclass
class _Stream:
    ws: ServerConnection
    stream_sid: str = ""
    pending: list[str] = field(default_factory=list)
    speaking_caller: bool = False
    interrupted: bool = False
    quiet_ms: int = 0
    heard: bytearray = field(default_factory=bytearray)
    turns: int = 0


class FakeTwilioServer:
    """The server side of Twilio's voice webhook and Media Streams, for one test."""

    def __init__(
        self,
        *,
        greeting_ms: int = 600,
        reply_ms: int | None = None,
        hang_up_after: int = -1,
        call_id: str = "call-0001",
    ) -> None:
        self.call_id = call_id
        self.greeting_ms = greeting_ms
        self.reply_ms = reply_ms  # None: echo the caller's line back
        self.hang_up_after = hang_up_after
        self.url = ""
        self.ws_url = ""
        self.webhooks: list[dict[str, Any]] = []
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.mark_sent: dict[str, float] = {}
        self.mark_echoed: dict[str, float] = {}
        self.echo_order: list[str] = []
        self.clears_sent: list[float] = []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeTwilioServer]:
        http = await asyncio.start_server(self._http, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{http.sockets[0].getsockname()[1]}"
        async with serve(self._media, "127.0.0.1", 0, compression=None) as ws_server:
            self.ws_url = f"ws://127.0.0.1:{next(iter(ws_server.sockets)).getsockname()[1]}"
            try:
                yield self
            finally:
                http.close()
                await http.wait_closed()

    # -- the webhook --------------------------------------------------------

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode()
        headers: dict[str, str] = {}
        while (line := (await reader.readline()).decode().strip()) != "":
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        target = request_line.split()[1]
        params = dict(parse_qsl(body.decode()))
        valid = RequestValidator(TOKEN).validate(
            self.url + target, params, headers.get("x-twilio-signature", "")
        )
        self.webhooks.append({"target": target, "params": params, "valid": valid})
        if valid:
            status, text = "200 OK", self._twiml(target)
        else:
            status, text = "403 Forbidden", ""
        payload = text.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()

    def _twiml(self, target: str) -> str:
        parts = urlsplit(target)
        stream = Stream(url=f"{self.ws_url}/ws/twilio")
        stream.parameter(name="call_id", value=self.call_id)
        stream.parameter(name="agent_id", value=parts.path.rsplit("/", 1)[-1])
        for name, value in parse_qsl(parts.query):
            stream.parameter(name=name, value=value)
        connect = Connect()
        connect.append(stream)
        response = VoiceResponse()
        response.append(connect)
        return str(response)

    # -- the media socket ---------------------------------------------------

    async def _media(self, ws: ServerConnection) -> None:
        conn = _Stream(ws)
        async for raw in ws:
            message = json.loads(raw)
            self.received.append((time.monotonic(), message))
            event = message["event"]
            if event == "start":
                conn.stream_sid = message["streamSid"]
                await self._speak(conn, tone(self.greeting_ms), "greeting")
            elif event == "media":
                await self._caller_audio(conn, ulaw_to_pcm16(_b64(message["media"]["payload"])))
            elif event == "mark":
                name = message["mark"]["name"]
                self.mark_echoed[name] = time.monotonic()
                self.echo_order.append(name)
                conn.pending.remove(name)
                if not conn.pending and conn.turns == self.hang_up_after:
                    await ws.close()

    async def _caller_audio(self, conn: _Stream, pcm: bytes) -> None:
        loud = last_audible(pcm, LOUD) is not None
        if loud:
            if not conn.speaking_caller:
                conn.speaking_caller, conn.heard = True, bytearray()
            conn.quiet_ms = 0
            if conn.pending and not conn.interrupted:  # talked over: barge-in
                conn.interrupted = True
                self.clears_sent.append(time.monotonic())
                await conn.ws.send(encode({"event": "clear", "streamSid": conn.stream_sid}))
        if not conn.speaking_caller:
            return
        conn.heard += pcm
        conn.quiet_ms += 0 if loud else 20
        if conn.quiet_ms >= 300:
            conn.speaking_caller = conn.interrupted = False
            conn.turns += 1
            reply = bytes(conn.heard) if self.reply_ms is None else tone(self.reply_ms)
            await self._speak(conn, reply, f"r{conn.turns}")

    async def _speak(self, conn: _Stream, pcm: bytes, label: str) -> None:
        """All of it at once, as a server may: the caller's playout paces it."""
        for i in range(0, len(pcm), FRAME_BYTES):
            payload = pcm16_to_ulaw(pcm[i : i + FRAME_BYTES])
            await conn.ws.send(
                encode(
                    {
                        "event": "media",
                        "streamSid": conn.stream_sid,
                        "media": {"payload": _b64e(payload)},
                    }
                )
            )
            last = i + FRAME_BYTES >= len(pcm)
            if last or (i // FRAME_BYTES) % 5 == 4:
                name = f"{label}:{i // FRAME_BYTES}"
                conn.pending.append(name)
                self.mark_sent[name] = time.monotonic()
                await conn.ws.send(
                    encode({"event": "mark", "streamSid": conn.stream_sid, "mark": {"name": name}})
                )

    def media_between(self, start: float, end: float) -> int:
        """How many ``media`` messages arrived between two instants: the caller's ticks."""
        return sum(1 for t, m in self.received if m["event"] == "media" and start < t < end)

    def messages(self, event: str) -> list[dict[str, Any]]:
        """Received messages of one type, in order."""
        return [m for _, m in self.received if m["event"] == event]


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode()
