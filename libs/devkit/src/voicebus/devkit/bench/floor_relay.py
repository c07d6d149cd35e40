"""The gateway-capacity floor: a minimal Twilio relay on the gateway's own library stack.

The same per-message work as the gateway, and nothing else: picows on uvloop;
each ``media`` message decoded by msgspec into a struct, its payload base64- and
μ-law-decoded (numpy table) and published as PCM on ``vb.audio.<call>.in`` with
the frame headers, through the same hand-built ``HPUB`` publisher; per call a
raw nats-py subscription on ``vb.audio.<call>.out`` whose frames are μ-law-
and base64-encoded into a bytes template and sent, with a mark every five
frames; mark echoes are parsed and dropped. No webhook, no token, no events, no
leases, no metrics: what a Python relay on this stack cannot go below.

``python -m voicebus.devkit.bench.floor_relay '{"port": N, "nats_url": "..."}'``;
prints ``null`` once listening, then answers ``["stop"]`` on stdin.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import sys
from typing import Any

import msgspec
import nats
import uvloop
from nats.aio.msg import Msg
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from voicebus.contracts import subjects
from voicebus.contracts.audio import header_block
from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16
from voicebus.runtime.frames import FramePublisher
from voicebus.runtime.settings import ServiceSettings


class _Media(msgspec.Struct):
    payload: str
    chunk: int | None = None
    timestamp: int | None = None


class _MediaMessage(msgspec.Struct, tag_field="event", tag="media"):
    media: _Media


class _Start(msgspec.Struct):
    streamSid: str  # noqa: N815 - Twilio's field name
    customParameters: dict[str, str]  # noqa: N815


class _StartMessage(msgspec.Struct, tag_field="event", tag="start"):
    start: _Start


class _Other(msgspec.Struct, tag_field="event", tag="mark"):
    pass


_DECODE = msgspec.json.Decoder(_MediaMessage | _StartMessage | _Other, strict=False)


class _Settings(ServiceSettings):
    service_name = "floor"
    default_http_port = 9


class Relay(WSListener):
    """One call."""

    def __init__(self, frames: FramePublisher, nc: Any) -> None:
        self._frames = frames
        self._nc = nc
        self._ws: WSTransport | None = None
        self._subject = b""
        self._head = b""
        self._mark_head = b""
        self._seq = 0
        self._sent = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._ws = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            if frame.msg_type is WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        try:
            message = _DECODE.decode(frame.get_payload_as_memoryview())
        except msgspec.DecodeError:
            return
        if isinstance(message, _MediaMessage):
            if not self._subject:
                return
            media = message.media
            pcm = ulaw_to_pcm16(binascii.a2b_base64(media.payload, strict_mode=True))
            seq = media.chunk if media.chunk is not None else self._seq
            self._seq = seq + 1
            ts = media.timestamp if media.timestamp is not None else seq * 20
            self._frames.publish(self._subject, header_block(8000, seq, ts), pcm)
        elif isinstance(message, _StartMessage):
            call_id = message.start.customParameters.get("call_id", "")
            sid = json.dumps(message.start.streamSid).encode()
            self._subject = subjects.audio_in(call_id).encode()
            self._head = b'{"event":"media","streamSid":%b,"media":{"payload":"' % sid
            self._mark_head = b'{"event":"mark","streamSid":%b,"mark":{"name":"' % sid
            asyncio.get_running_loop().create_task(self._subscribe(call_id))

    async def _subscribe(self, call_id: str) -> None:
        await self._nc.subscribe(subjects.audio_out(call_id), cb=self._on_audio)

    async def _on_audio(self, msg: Msg) -> None:
        ws = self._ws
        if ws is None or ws.is_disconnected:
            return
        payload = binascii.b2a_base64(pcm16_to_ulaw(msg.data), newline=False)
        ws.send(WSMsgType.TEXT, b'%b%b"}}' % (self._head, payload))
        self._sent += 1
        if self._sent % 5 == 0:
            ws.send(WSMsgType.TEXT, b'%bm%d"}}' % (self._mark_head, self._sent))


async def _serve(config: dict[str, Any]) -> None:
    settings = _Settings(nats_url=config["nats_url"])
    frames = FramePublisher(settings, name="floor/frames")
    await frames.start()
    nc = await nats.connect(config["nats_url"], pending_size=2**26)
    server = await ws_create_server(
        lambda _request: Relay(frames, nc), "127.0.0.1", int(config["port"])
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sys.stdout.write("null\n")
    sys.stdout.flush()
    async for line in reader:
        command = json.loads(line)
        sys.stdout.write("null\n")
        sys.stdout.flush()
        if command[0] == "stop":
            break
    server.close()
    await frames.close()
    await nc.drain()


if __name__ == "__main__":
    uvloop.run(_serve(json.loads(sys.argv[1])))
