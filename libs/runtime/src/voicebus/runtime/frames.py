"""A publish-only NATS connection for audio frames: the documented wire protocol, no client.

nats-py's ``publish`` with headers validates and re-encodes every header on
every call (≈5.4 µs a frame, most of its cost) and must be awaited, which a
synchronous WebSocket callback cannot do. Frames do not need any of that: the
header block is built once per frame from fixed text (``contracts.audio``), and
the message goes out as one ``HPUB`` line (NATS client protocol, "HPUB") in
a buffer written once per event-loop iteration, whatever the number of frames.

This is a second connection beside the service's nats-py one, with the same
servers and credentials; it never subscribes. The server's ``PING`` is answered;
an ``-ERR`` or a lost socket reconnects (every ``RECONNECT_WAIT_S``), keeping the
newest ``max_pending`` bytes meanwhile: when the backlog is full the *oldest*
frames are dropped and counted (:attr:`FramePublisher.dropped`), since 20 ms of
audio from seconds ago is worth less than the audio of now.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections import deque
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from voicebus.runtime.bus import CONNECT_TIMEOUT_S, RECONNECT_WAIT_S, tls_context, user_credentials
from voicebus.runtime.errors import BusError
from voicebus.runtime.settings import ServiceSettings

__all__ = ["FramePublisher"]

log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING: Final = 2 * 1024 * 1024
"""Bytes kept while NATS is unreachable (nats-py's default pending size)."""


class FramePublisher:
    """Publishes ``HPUB`` messages on a connection of its own (see the module docstring).

    Args:
        settings: servers and credentials (``VB_NATS_*``).
        name: connection name shown in NATS monitoring.
        max_pending: bytes buffered at most; beyond, frames are dropped.
    """

    def __init__(
        self, settings: ServiceSettings, *, name: str, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        self._settings = settings
        self._name = name
        self._max_pending = max_pending
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._max_payload = 1024 * 1024
        self.dropped = 0
        """Frames dropped because the buffer was full."""
        self.published = 0
        """Frames accepted for sending."""

    @property
    def connected(self) -> bool:
        """True while a connection is up."""
        return self._writer is not None

    async def start(self) -> None:
        """Connect (retrying unreachable servers until one answers).

        Raises:
            BusError: a server refused the connection for good (credentials).
        """
        self._loop = asyncio.get_running_loop()
        await self._connect_until_up()

    def publish(self, subject: bytes, headers: bytes, payload: bytes) -> bool:
        """Queue one message; False when a frame was lost (this one or an older one).

        Args:
            subject: the subject, ASCII, already validated (built by ``contracts.subjects``).
            headers: a complete header block (``NATS/1.0\r\n...\r\n\r\n``).
            payload: the message body.
        """
        size = len(headers) + len(payload)
        if self._closing or size > self._max_payload:
            self.dropped += 1
            return False
        message = b"HPUB %b %d %d\r\n%b%b\r\n" % (subject, len(headers), size, headers, payload)
        writer = self._writer
        lost = False
        if writer is not None:
            if writer.transport.get_write_buffer_size() + self._queued > self._max_pending:
                self.dropped += 1  # connected, but the socket cannot keep up: this one goes
                return False
        else:
            while self._queue and self._queued + len(message) > self._max_pending:
                self._queued -= len(self._queue.popleft())  # the oldest goes
                self.dropped += 1
                lost = True
        self._queue.append(message)
        self._queued += len(message)
        self.published += 1
        if self._flush_handle is None and writer is not None and self._loop is not None:
            self._flush_handle = self._loop.call_soon(self._flush)
        return not lost

    def _flush(self) -> None:
        self._flush_handle = None
        writer = self._writer
        if writer is None or not self._queue:
            return
        writer.write(b"".join(self._queue))
        self._queue.clear()
        self._queued = 0

    async def close(self) -> None:
        """Send what is buffered and close the connection."""
        self._closing = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._flush()
        writer, self._writer = self._writer, None
        task, self._reader_task = self._reader_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if writer is not None:
            with contextlib.suppress(OSError, ConnectionError):
                await writer.drain()
            writer.close()
            with contextlib.suppress(OSError, ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    # -- connection ---------------------------------------------------------------

    async def _connect_until_up(self) -> None:
        while not self._closing:
            for server in self._settings.nats_servers:
                try:
                    reader, writer = await asyncio.wait_for(
                        self._handshake(server), CONNECT_TIMEOUT_S * 2
                    )
                except BusError:
                    raise
                except (OSError, ConnectionError, TimeoutError, ValueError, ssl.SSLError) as err:
                    log.warning(
                        "frame publisher connect failed",
                        extra={"connection": self._name, "error": repr(err)},
                    )
                    continue
                self._writer = writer
                self._reader_task = asyncio.create_task(
                    self._read(reader), name="frame-publisher-reader"
                )
                self._flush()
                log.info("frame publisher connected", extra={"connection": self._name})
                return
            await asyncio.sleep(RECONNECT_WAIT_S)

    async def _handshake(self, server: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(server)
        host, port = parts.hostname or "127.0.0.1", parts.port or 4222
        reader, writer = await asyncio.open_connection(host, port, limit=1024 * 1024)
        try:
            info = _parse_info(await reader.readline())
            self._max_payload = int(info.get("max_payload", self._max_payload))
            ours = tls_context(self._settings)
            if ours is not None or parts.scheme == "tls" or info.get("tls_required"):
                context = ours or ssl.create_default_context()
                await writer.start_tls(context, server_hostname=host)
            connect = self._connect_options(info, parts.username, parts.password)
            writer.write(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
            await writer.drain()
            answer = await reader.readline()
            while answer.startswith(b"INFO"):
                answer = await reader.readline()
            if answer.startswith(b"-ERR"):
                message = answer.decode(errors="replace").strip()
                if "authorization" in message.lower() or "authentication" in message.lower():
                    raise BusError(f"NATS refused connection {self._name!r}: {message}")
                raise ConnectionError(message)
            if not answer.startswith(b"PONG"):
                raise ConnectionError(f"unexpected answer to CONNECT: {answer[:64]!r}")
        except BaseException:
            writer.close()
            raise
        return reader, writer

    def _connect_options(
        self, info: dict[str, Any], url_user: str | None, url_password: str | None
    ) -> dict[str, Any]:
        settings = self._settings
        options: dict[str, Any] = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": False,
            "protocol": 1,
            "lang": "python-voicebus-frames",
            "version": "1",
            "name": self._name,
        }
        creds = user_credentials(settings)
        if creds is not None:
            options.update(_jwt_auth(creds, info.get("nonce", "")))
        elif settings.nats_user:
            options["user"] = settings.nats_user
            password = settings.nats_password
            options["pass"] = password.get_secret_value() if password else ""
        elif url_user and url_password is not None:
            options["user"], options["pass"] = unquote(url_user), unquote(url_password)
        elif url_user:
            options["auth_token"] = unquote(url_user)
        return options

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Answer PINGs; on EOF or ``-ERR``, reconnect."""
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if line.startswith(b"PING"):
                    if self._writer is not None:
                        self._writer.write(b"PONG\r\n")
                elif line.startswith(b"-ERR"):
                    log.warning(
                        "frame publisher error from server",
                        extra={
                            "connection": self._name,
                            "error": line[:200].decode(errors="replace"),
                        },
                    )
        except (OSError, ConnectionError, ssl.SSLError):
            pass
        if self._closing:
            return
        log.warning("frame publisher disconnected", extra={"connection": self._name})
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        asyncio.get_running_loop().create_task(self._reconnect(), name="frame-publisher-reconnect")

    async def _reconnect(self) -> None:
        await asyncio.sleep(RECONNECT_WAIT_S)
        try:
            await self._connect_until_up()
        except BusError:
            log.exception("frame publisher refused by the server")


def _parse_info(line: bytes) -> dict[str, Any]:
    if not line.startswith(b"INFO "):
        raise ConnectionError(f"not a NATS server: {line[:64]!r}")
    info: dict[str, Any] = json.loads(line[5:])
    return info


def _jwt_auth(creds: Any, nonce: str) -> dict[str, str]:
    """``jwt`` and the nonce signed with the user's nkey seed, from a .creds file or its text."""
    import base64

    import nkeys  # type: ignore[import-untyped]  # ships no type marker

    text = creds if isinstance(creds, str) and "BEGIN" in creds else None
    if text is None:
        raw = str(creds)
        if "BEGIN NATS USER JWT" not in raw:
            with open(raw, encoding="utf-8") as file:
                raw = file.read()
        text = raw
    blocks = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("-") and not line.startswith("*")
    ]
    jwt, seed = blocks[0], next(b for b in blocks if b.startswith("SU"))
    signer = nkeys.from_seed(seed.encode())
    signature = base64.urlsafe_b64encode(signer.sign(nonce.encode())).decode().rstrip("=")
    return {"jwt": jwt, "sig": signature}
