"""``deepgram``: Deepgram's streaming speech to text (``/v1/listen`` over a WebSocket).

Phone audio goes up as it came from the phone: 8 kHz μ-law (the bus carries the
gateway's lossless PCM16 decoding, re-encoded here; no resampling). Other rates go
up as linear16. Interim results (``is_final: false``) become interim updates; each
turn ends with ``Finalize``, and its final is the ``is_final`` results since the
previous turn, complete when Deepgram answers ``from_finalize: true`` or, since
Deepgram only sends that when it still held audio, when it has said nothing more
for ``settle_ms`` after its last result. A turn in which Deepgram heard nothing
(no ``SpeechStarted``, no words: ``vad_events`` is on) completes after ``quiet_ms``
with no answer; one in which it heard speech waits for its words (a slow answer is
then the fallback budget's business, not an empty transcript).
``KeepAlive`` holds the socket open between turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voicebus.engines.base import STT, EngineContext, EngineError, Options, Transcription
from voicebus.engines.cloud._wire import endpoint_id, open_ws, parse_json, require_key, ws_url
from voicebus.engines.options import OptionReader
from voicebus.engines.streaming import InterimListener, TranscriptUpdate, WordTiming
from voicebus.engines.urls import check_url
from voicebus.engines.validation import choice_of
from voicebus.runtime.codecs import pcm16_to_ulaw

NAME: Final = "deepgram"
DEFAULT_URL: Final = "wss://api.deepgram.com"
MODELS: Final = (
    "nova-3",
    "nova-3-general",
    "nova-2",
    "nova-2-phonecall",
    "nova-2-general",
    "enhanced",
    "base",
)
LANGUAGES: Final = (
    "multi",
    "en",
    "en-US",
    "en-GB",
    "en-IN",
    "en-AU",
    "hi",
    "es",
    "fr",
    "de",
    "it",
    "pt",
    "nl",
    "ja",
    "ko",
    "zh",
    "ru",
    "ta",
    "tr",
    "uk",
    "sv",
    "pl",
)
_FINALIZE: Final = object()
_KEEPALIVE: Final = object()
_CLOSE: Final = object()


@dataclass(slots=True)
class _PendingTurn:
    future: asyncio.Future[TranscriptUpdate]
    start_s: float
    heard_speech: bool = False
    settle: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class _Heard:
    texts: list[str] = field(default_factory=list)
    words: list[dict[str, Any]] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)


class DeepgramSTT:
    """Deepgram live transcription.

    Args:
        api_key: the tenant's key (``Authorization: Token``).
        base_url: the API root (``wss://api.deepgram.com``; a stand-in's URL in tests).
        model: Deepgram model.
        language: language code, or ``multi``.
        settle_ms: after ``Finalize``, silence from Deepgram after a result that completes
            the turn.
        quiet_ms: after ``Finalize``, silence from Deepgram with no result at all that
            completes the turn (nothing was left to transcribe).
        keepalive_s: ``KeepAlive`` interval while no audio flows (Deepgram closes at 10 s).
        connect_timeout_s: WebSocket handshake budget.
        allow_private: allow loopback/private hosts (stand-ins; never for tenants' URLs).
    """

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_URL,
        model: str = "nova-3",
        language: str = "en",
        settle_ms: int = 400,
        quiet_ms: int = 1500,
        keepalive_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        allow_private: bool = False,
    ) -> None:
        self.base_url = ws_url(base_url)
        self.model = model
        self.language = language
        self.settle_s = settle_ms / 1000
        self.quiet_s = quiet_ms / 1000
        self.keepalive_s = keepalive_s
        self.connect_timeout_s = connect_timeout_s
        self.allow_private = allow_private
        self.__key = api_key
        self.endpoint = endpoint_id(NAME, self.base_url, api_key)

    def __repr__(self) -> str:
        return f"DeepgramSTT(base_url={self.base_url!r}, model={self.model!r})"

    def url(self, sample_rate: int) -> str:
        """The ``/v1/listen`` URL for a stream at ``sample_rate``."""
        encoding = "mulaw" if sample_rate == 8000 else "linear16"
        query = {
            "model": self.model,
            "language": self.language,
            "encoding": encoding,
            "sample_rate": sample_rate,
            "channels": 1,
            "interim_results": "true",
            "punctuate": "true",
            "smart_format": "true",
            "vad_events": "true",
        }
        return f"{self.base_url}/v1/listen?{urlencode(query)}"

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcription:
        """One segment through a short-lived stream (the segment-engine interface).

        Raises:
            EngineError: refused, unreachable, or the stream broke.
        """
        session = await self.open(sample_rate)
        try:
            session.push(pcm16)
            update = await session.end_turn()
        finally:
            await session.aclose()
        return Transcription(update.text, update.language, update.confidence)

    async def open(
        self, sample_rate: int, on_interim: InterimListener | None = None
    ) -> DeepgramSession:
        """Connect a live transcription stream.

        Raises:
            EngineError: refused (401 → auth) or unreachable.
        """
        headers = {"Authorization": f"Token {self.__key}"} if self.__key else {}
        ws = await open_ws(
            NAME,
            self.url(sample_rate),
            headers,
            timeout_s=self.connect_timeout_s,
            allow_private=self.allow_private,
        )
        return DeepgramSession(ws, sample_rate, on_interim, self)


class DeepgramSession:
    """One live transcription stream (see the module docstring)."""

    def __init__(
        self,
        ws: ClientConnection,
        sample_rate: int,
        on_interim: InterimListener | None,
        engine: DeepgramSTT,
    ) -> None:
        self.engine = NAME
        self._ws = ws
        self._rate = sample_rate
        self._mulaw = sample_rate == 8000
        self._on_interim = on_interim
        self._settle_s = engine.settle_s
        self._quiet_s = engine.quiet_s
        self._keepalive_s = engine.keepalive_s
        self._language = engine.language
        self._outbox: asyncio.Queue[object] = asyncio.Queue()
        self._pending: deque[_PendingTurn] = deque()
        self._heard = _Heard()
        self._pushed_bytes = 0
        self._speech = False  # Deepgram heard speech in the open turn
        self._turn_start_s = 0.0
        self._failure: EngineError | None = None
        self._closed = False
        self._tasks = [
            asyncio.create_task(self._send_forever(), name="deepgram-send"),
            asyncio.create_task(self._receive_forever(), name="deepgram-receive"),
        ]

    def push(self, pcm16: bytes) -> None:
        """Queue audio (μ-law at 8 kHz) for the socket."""
        if self._closed or self._failure is not None:
            return
        self._pushed_bytes += len(pcm16)
        self._outbox.put_nowait(pcm16_to_ulaw(pcm16) if self._mulaw else pcm16)

    def end_turn(self) -> asyncio.Future[TranscriptUpdate]:
        """Send ``Finalize``; the future resolves with the turn's finals."""
        future: asyncio.Future[TranscriptUpdate] = asyncio.get_running_loop().create_future()
        if self._failure is not None:
            future.set_exception(self._failure)
            return future
        self._pending.append(_PendingTurn(future, self._turn_start_s, self._speech))
        self._speech = False
        self._turn_start_s = self._pushed_bytes / 2 / self._rate
        self._outbox.put_nowait(_FINALIZE)
        self._arm_settle_for_head()
        return future

    async def aclose(self) -> None:
        """Send ``CloseStream`` and close the socket."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ConnectionClosed, OSError):
            await asyncio.wait_for(self._ws.send(json.dumps({"type": "CloseStream"})), 1.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._ws.close()
        self._fail(EngineError(f"{NAME}: session closed", kind="closed"))

    # -- socket ------------------------------------------------------------------

    async def _send_forever(self) -> None:
        try:
            while True:
                try:
                    item = await asyncio.wait_for(self._outbox.get(), self._keepalive_s)
                except TimeoutError:
                    item = _KEEPALIVE
                if isinstance(item, bytes):
                    await self._ws.send(item)
                elif item is _FINALIZE:
                    await self._ws.send(json.dumps({"type": "Finalize"}))
                elif item is _KEEPALIVE:
                    await self._ws.send(json.dumps({"type": "KeepAlive"}))
        except (ConnectionClosed, OSError):
            self._fail(
                EngineError(f"{NAME}: the vendor closed the stream", retryable=True, kind="closed")
            )

    async def _receive_forever(self) -> None:
        try:
            async for raw in self._ws:
                self._on_message(parse_json(NAME, raw))
            code = self._ws.close_code
            self._fail(
                EngineError(
                    f"{NAME}: the vendor closed the stream (code {code})",
                    retryable=True,
                    kind="closed",
                )
            )
        except EngineError as exc:
            self._fail(exc)
        except (ConnectionClosed, OSError):
            self._fail(
                EngineError(f"{NAME}: the vendor closed the stream", retryable=True, kind="closed")
            )

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "Results":
            self._on_results(message)
        elif kind == "SpeechStarted":
            self._speech = True
        elif kind == "Error" or "err_code" in message:
            detail = str(message.get("description") or message.get("err_msg") or "error")[:200]
            raise EngineError(
                f"{NAME}: the vendor reported an error: {detail}", retryable=True, kind="protocol"
            )
        # Metadata, SpeechStarted, UtteranceEnd: nothing to do.

    def _on_results(self, message: dict[str, Any]) -> None:
        try:
            alternative = message["channel"]["alternatives"][0]
            transcript = str(alternative.get("transcript", ""))
            is_final = bool(message.get("is_final"))
        except (KeyError, IndexError, TypeError):
            raise EngineError(
                f"{NAME}: the vendor sent a malformed result", retryable=True, kind="protocol"
            ) from None
        if transcript:
            self._speech = True
        if is_final:
            if transcript:
                self._heard.texts.append(transcript)
                self._heard.words.extend(alternative.get("words") or [])
                if isinstance(alternative.get("confidence"), int | float):
                    self._heard.confidences.append(float(alternative["confidence"]))
        elif transcript and self._on_interim is not None:
            text = " ".join([*self._heard.texts, transcript])
            self._on_interim(TranscriptUpdate(text, False, language=self._language, engine=NAME))
        if not self._pending:
            return
        head = self._pending[0]
        if message.get("from_finalize"):
            self._complete()
        else:  # Deepgram may send no from_finalize: settle after it goes quiet
            if head.settle is not None:
                head.settle.cancel()
            loop = asyncio.get_running_loop()
            head.settle = loop.call_later(self._settle_s, self._complete)

    def _complete(self) -> None:
        if not self._pending:
            return
        turn = self._pending.popleft()
        if turn.settle is not None:
            turn.settle.cancel()
        self._arm_settle_for_head()
        heard, self._heard = self._heard, _Heard()
        words = tuple(
            WordTiming(
                str(w.get("punctuated_word") or w.get("word") or ""),
                (float(w.get("start", 0.0)) - turn.start_s) * 1000,
                (float(w.get("end", 0.0)) - turn.start_s) * 1000,
                float(w["confidence"]) if isinstance(w.get("confidence"), int | float) else None,
            )
            for w in heard.words
            if isinstance(w, dict)
        )
        confidence = sum(heard.confidences) / len(heard.confidences) if heard.confidences else None
        update = TranscriptUpdate(
            text=" ".join(heard.texts).strip(),
            final=True,
            start_ms=max(0.0, words[0].start_ms) if words else 0.0,
            end_ms=max(0.0, words[-1].end_ms) if words else 0.0,
            confidence=confidence,
            language=self._language,
            words=words,
            engine=NAME,
        )
        if not turn.future.done():
            turn.future.set_result(update)

    def _arm_settle_for_head(self) -> None:
        head = self._pending[0] if self._pending else None
        if head is not None and head.settle is None and not head.heard_speech:
            loop = asyncio.get_running_loop()
            head.settle = loop.call_later(self._quiet_s, self._complete)

    def _fail(self, error: EngineError) -> None:
        if self._failure is None:
            self._failure = error
        while self._pending:
            turn = self._pending.popleft()
            if turn.settle is not None:
                turn.settle.cancel()
            if not turn.future.done():
                turn.future.set_exception(error)


def create(options: Options, context: EngineContext) -> DeepgramSTT:
    """Factory: options ``model``, ``language``, ``base_url``, ``settle_ms``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    engine = DeepgramSTT(
        api_key=context.api_key,
        base_url=base_url,
        model=choice_of(NAME, "model", read.text("model", "nova-3"), MODELS),
        language=choice_of(NAME, "language", read.text("language", "en"), LANGUAGES),
        settle_ms=read.integer("settle_ms", 400, low=50, high=3000),
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def register() -> None:
    """Add ``deepgram`` to the STT registry."""
    STT.register(NAME, create)
