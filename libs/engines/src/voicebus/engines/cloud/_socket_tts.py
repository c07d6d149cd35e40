"""A TTS engine over one vendor WebSocket, one context per text (ElevenLabs, Cartesia).

The socket is opened on first use and kept for the engine's call; a text that fails
or is abandoned mid-way closes it, so the next text starts on a clean socket (no
audio of the abandoned text can arrive as the next one's).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voicebus.engines.base import EngineError
from voicebus.engines.cloud._wire import open_ws, parse_json
from voicebus.engines.streaming import SpeechChunk


class SocketTTS(ABC):
    """Base of context-per-text WebSocket TTS engines.

    Subclasses give the URL and headers, the messages that start a context, and how
    to read one server message (``None``: nothing for us; raise on an error).
    """

    name: str

    def __init__(self, *, connect_timeout_s: float, allow_private: bool) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.allow_private = allow_private
        self._ws: ClientConnection | None = None
        self._rate = 0
        self._lock = asyncio.Lock()

    @abstractmethod
    def url(self, sample_rate: int) -> str:
        """The socket's URL for audio at ``sample_rate``."""

    @abstractmethod
    def headers(self) -> dict[str, str]:
        """Handshake headers (the key)."""

    @abstractmethod
    def requests(self, text: str, context_id: str, sample_rate: int) -> list[str]:
        """The JSON messages that speak ``text`` in a new context."""

    @abstractmethod
    def read(
        self, message: dict[str, object], context_id: str, sample_rate: int
    ) -> SpeechChunk | bool | None:
        """One server message: audio, True when the context is done, None to skip."""

    async def aclose(self) -> None:
        """Close the socket."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _socket(self, sample_rate: int) -> ClientConnection:
        if self._ws is not None and self._rate == sample_rate:
            return self._ws
        await self.aclose()
        self._ws = await open_ws(
            self.name,
            self.url(sample_rate),
            self.headers(),
            timeout_s=self.connect_timeout_s,
            allow_private=self.allow_private,
        )
        self._rate = sample_rate
        return self._ws

    async def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """Audio only."""
        async for chunk in self.synthesize_timed(text, sample_rate):
            yield chunk.pcm

    async def synthesize_timed(self, text: str, sample_rate: int) -> AsyncIterator[SpeechChunk]:
        """Yield audio at ``sample_rate`` with the words' timings, as the vendor streams them.

        Raises:
            EngineError: refused, closed, or a malformed or error message.
        """
        if not text.strip():
            return
        async with self._lock:
            finished = False
            context_id = uuid.uuid4().hex
            try:
                ws = await self._socket(sample_rate)
                for request in self.requests(text, context_id, sample_rate):
                    await ws.send(request)
                async for raw in ws:
                    outcome = self.read(parse_json(self.name, raw), context_id, sample_rate)
                    if outcome is True:
                        finished = True
                        return
                    if isinstance(outcome, SpeechChunk):
                        yield outcome
                raise EngineError(
                    f"{self.name}: the vendor closed the stream", retryable=True, kind="closed"
                )
            except (ConnectionClosed, OSError) as exc:
                raise EngineError(
                    f"{self.name}: the vendor closed the stream", retryable=True, kind="closed"
                ) from exc
            finally:
                if not finished:
                    await self.aclose()
