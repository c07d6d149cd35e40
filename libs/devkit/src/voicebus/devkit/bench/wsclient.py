"""A minimal WebSocket client for load generation: thousands of sockets, few µs per frame.

A general client (``websockets``) costs ~20 µs per message in Python, which on
a shared 2-core machine would make the load generator, not the gateway, the
bottleneck. Here each frame is one ``transport.write`` of a prebuilt header and
the text: client frames must be masked (RFC 6455 §5.3), and a zero masking key
leaves the payload as it is, so no per-byte work is done. Server frames are
parsed just enough to hand text messages to a callback and answer pings.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

_ZERO_MASK: Final = b"\x00\x00\x00\x00"
OP_TEXT: Final = 0x1
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final, masked (zero key) client frame."""
    size = len(payload)
    head = bytes([0x80 | opcode])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    return head + _ZERO_MASK + payload


class WsClient(asyncio.Protocol):
    """One client WebSocket; text messages from the server go to ``on_text``."""

    def __init__(self, on_text: Callable[[bytes], None]) -> None:
        self._on_text = on_text
        self._buffer = bytearray()
        self._open = False
        self._handshake: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def connect(
        cls, url: str, on_text: Callable[[bytes], None], timeout: float = 10.0
    ) -> WsClient:
        """Open ``ws://host:port/path?query`` and finish the opening handshake."""
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        client = cls(on_text)
        client._handshake = loop.create_future()
        await loop.create_connection(
            lambda: client, parts.hostname or "127.0.0.1", parts.port or 80
        )
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert client.transport is not None
        client.transport.write(request.encode())
        await asyncio.wait_for(client._handshake, timeout)
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send_text(self, text: str) -> None:
        """Queue one text message (never blocks; the kernel buffers)."""
        if self.transport is not None and not self.closed.is_set():
            self.transport.write(client_frame(text.encode()))

    def close(self) -> None:
        """Send a close frame and drop the connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(struct.pack("!H", 1000), OP_CLOSE))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        """Parse the handshake answer, then server frames."""
        self._buffer += data
        if not self._open:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._buffer[:end]).split(b"\r\n", 1)[0]
            del self._buffer[: end + 4]
            if b" 101 " not in status + b" ":
                if self._handshake and not self._handshake.done():
                    self._handshake.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self._open = True
            if self._handshake and not self._handshake.done():
                self._handshake.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buf = self._buffer
        while len(buf) >= 2:
            opcode, size, offset = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if size == 126:
                if len(buf) < 4:
                    return
                size, offset = struct.unpack_from("!H", buf, 2)[0], 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size, offset = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < offset + size:
                return
            payload = bytes(buf[offset : offset + size])
            del buf[: offset + size]
            if opcode == OP_TEXT:
                self._on_text(payload)
            elif opcode == OP_PING and self.transport is not None:
                self.transport.write(client_frame(payload, OP_PONG))
            elif opcode == OP_CLOSE:
                self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Mark the socket closed."""
        self.closed.set()
        if self._handshake and not self._handshake.done():
            self._handshake.set_exception(exc or ConnectionError("closed during handshake"))
