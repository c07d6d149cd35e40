"""``cartesia`` STT: Cartesia's streaming speech to text (``/stt/websocket``, ink-whisper).

Audio goes up as binary ``pcm_s16le`` at the call's rate. Each turn ends with the text
command ``finalize``; transcripts come back as deltas (``is_final`` ones are
concatenated, others are interim) and ``flush_done`` completes the turn. ``close``
ends the session (``done``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, Final
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voicebus.engines.base import STT, EngineContext, EngineError, Options, Transcription
from voicebus.engines.cloud._wire import endpoint_id, open_ws, parse_json, require_key, ws_url
from voicebus.engines.cloud.cartesia_tts import API_VERSION, LANGUAGES
from voicebus.engines.options import OptionReader
from voicebus.engines.streaming import InterimListener, TranscriptUpdate, WordTiming
from voicebus.engines.urls import check_url
from voicebus.engines.validation import choice_of

NAME: Final = "cartesia"
DEFAULT_URL: Final = "wss://api.cartesia.ai"
MODELS: Final = ("ink-whisper",)
_FINALIZE: Final = "finalize"


class CartesiaSTT:
    """Cartesia live transcription.

    Args:
        api_key: the tenant's key (``X-API-Key``).
        base_url: API root (a stand-in's URL in tests).
        model: model id.
        language: language code.
        connect_timeout_s: handshake budget.
        allow_private: allow loopback/private hosts.
    """

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_URL,
        model: str = "ink-whisper",
        language: str = "en",
        connect_timeout_s: float = 5.0,
        allow_private: bool = False,
    ) -> None:
        self.base_url = ws_url(base_url)
        self.model, self.language = model, language
        self.connect_timeout_s = connect_timeout_s
        self.allow_private = allow_private
        self.__key = api_key
        self.endpoint = endpoint_id(NAME, self.base_url, api_key)

    def __repr__(self) -> str:
        return f"CartesiaSTT(base_url={self.base_url!r}, model={self.model!r})"

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcription:
        """One segment through a short-lived stream."""
        session = await self.open(sample_rate)
        try:
            session.push(pcm16)
            update = await session.end_turn()
        finally:
            await session.aclose()
        return Transcription(update.text, update.language, update.confidence)

    async def open(
        self, sample_rate: int, on_interim: InterimListener | None = None
    ) -> CartesiaSession:
        """Connect a transcription stream.

        Raises:
            EngineError: refused (401 → auth) or unreachable.
        """
        query = urlencode(
            {
                "model": self.model,
                "language": self.language,
                "encoding": "pcm_s16le",
                "sample_rate": sample_rate,
            }
        )
        headers = {"Cartesia-Version": API_VERSION}
        if self.__key:
            headers["X-API-Key"] = self.__key
        ws = await open_ws(
            NAME,
            f"{self.base_url}/stt/websocket?{query}",
            headers,
            timeout_s=self.connect_timeout_s,
            allow_private=self.allow_private,
        )
        return CartesiaSession(ws, sample_rate, on_interim, self.language)


class CartesiaSession:
    """One transcription stream (see the module docstring)."""

    def __init__(
        self,
        ws: ClientConnection,
        sample_rate: int,
        on_interim: InterimListener | None,
        language: str,
    ) -> None:
        self.engine = NAME
        self._ws = ws
        self._rate = sample_rate
        self._on_interim = on_interim
        self._language = language
        self._outbox: asyncio.Queue[bytes | str] = asyncio.Queue()
        self._pending: deque[asyncio.Future[TranscriptUpdate]] = deque()
        self._texts: list[str] = []
        self._words: list[WordTiming] = []
        self._failure: EngineError | None = None
        self._closed = False
        self._tasks = [
            asyncio.create_task(self._send_forever(), name="cartesia-send"),
            asyncio.create_task(self._receive_forever(), name="cartesia-receive"),
        ]

    def push(self, pcm16: bytes) -> None:
        """Queue audio for the socket."""
        if not self._closed and self._failure is None:
            self._outbox.put_nowait(pcm16)

    def end_turn(self) -> asyncio.Future[TranscriptUpdate]:
        """Send ``finalize``; the future resolves at ``flush_done``."""
        future: asyncio.Future[TranscriptUpdate] = asyncio.get_running_loop().create_future()
        if self._failure is not None:
            future.set_exception(self._failure)
            return future
        self._pending.append(future)
        self._outbox.put_nowait(_FINALIZE)
        return future

    async def aclose(self) -> None:
        """Send ``close`` and close the socket."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ConnectionClosed, OSError, TimeoutError):
            await asyncio.wait_for(self._ws.send("close"), 1.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._ws.close()
        self._fail(EngineError(f"{NAME}: session closed", kind="closed"))

    async def _send_forever(self) -> None:
        try:
            while True:
                await self._ws.send(await self._outbox.get())
        except (ConnectionClosed, OSError):
            self._fail(
                EngineError(f"{NAME}: the vendor closed the stream", retryable=True, kind="closed")
            )

    async def _receive_forever(self) -> None:
        try:
            async for raw in self._ws:
                self._on_message(parse_json(NAME, raw))
            self._fail(
                EngineError(f"{NAME}: the vendor closed the stream", retryable=True, kind="closed")
            )
        except EngineError as exc:
            self._fail(exc)
        except (ConnectionClosed, OSError):
            self._fail(
                EngineError(f"{NAME}: the vendor closed the stream", retryable=True, kind="closed")
            )

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "error":
            detail = str(message.get("message") or message.get("error") or "error")[:200]
            raise EngineError(
                f"{NAME}: the vendor reported an error: {detail}", retryable=True, kind="protocol"
            )
        if kind == "transcript":
            text = str(message.get("text", ""))
            if message.get("is_final"):
                self._texts.append(text)
                for word in message.get("words") or []:
                    with contextlib.suppress(KeyError, TypeError, ValueError):
                        self._words.append(
                            WordTiming(
                                str(word["word"]),
                                float(word["start"]) * 1000,
                                float(word["end"]) * 1000,
                            )
                        )
            elif text.strip() and self._on_interim is not None:
                self._on_interim(
                    TranscriptUpdate(
                        "".join(self._texts) + text, False, language=self._language, engine=NAME
                    )
                )
        elif kind == "flush_done" and self._pending:
            future = self._pending.popleft()
            text, self._texts = "".join(self._texts).strip(), []
            words, self._words = tuple(self._words), []
            if not future.done():
                future.set_result(
                    TranscriptUpdate(
                        text,
                        True,
                        words[0].start_ms if words else 0.0,
                        words[-1].end_ms if words else 0.0,
                        None,
                        self._language,
                        words,
                        NAME,
                    )
                )

    def _fail(self, error: EngineError) -> None:
        if self._failure is None:
            self._failure = error
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(error)


def create(options: Options, context: EngineContext) -> CartesiaSTT:
    """Factory: options ``model``, ``language``, ``base_url``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    engine = CartesiaSTT(
        api_key=context.api_key,
        base_url=base_url,
        model=choice_of(NAME, "model", read.text("model", "ink-whisper"), MODELS),
        language=choice_of(NAME, "language", read.text("language", "en"), LANGUAGES),
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def register() -> None:
    """Add ``cartesia`` to the STT registry."""
    STT.register(NAME, create)
