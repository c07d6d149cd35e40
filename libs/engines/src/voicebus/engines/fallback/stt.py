"""STT over an ordered list of engines: on failure the audio since the last final is replayed.

The session keeps the audio of every turn whose final has not arrived yet, and of
the turn still open. When the active engine's session fails (an error, malformed
frames, a closed socket) or a final comes later than ``final_transcript_s``, the
next engine's session is opened, every kept turn is replayed into it (each closed
again with ``end_turn``) followed by the open turn's audio so far, and the callers'
futures resolve with the new engine's finals: no turn is lost, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from voicebus.engines.base import EngineAuthError, EngineError, STTEngine
from voicebus.engines.fallback.chain import Budgets, Chain
from voicebus.engines.fallback.incidents import Reporter, classify, failover, ignore
from voicebus.engines.streaming import (
    InterimListener,
    StreamingSTT,
    STTSession,
    TranscriptUpdate,
    open_session,
)

log = logging.getLogger(__name__)

ROLE: Final = "stt"
MAX_KEPT_BYTES: Final = 8000 * 2 * 120
"""Audio kept for replay at most (two minutes at 8 kHz); older turns are given up."""

AnySTT = STTEngine | StreamingSTT


@dataclass(slots=True)
class _Turn:
    audio: bytearray = field(default_factory=bytearray)
    result: asyncio.Future[TranscriptUpdate] | None = None
    inner: asyncio.Future[TranscriptUpdate] | None = None


class FallbackSTT:
    """Opens :class:`FallbackSTTSession` over several STT engines.

    Args:
        engines: in order of preference (streaming or segment engines).
        budgets: time limits per engine.
        report: receives engine failures and failovers.
    """

    def __init__(
        self,
        engines: Sequence[AnySTT],
        *,
        budgets: Budgets | None = None,
        report: Reporter = ignore,
    ) -> None:
        self._chain: Chain[AnySTT] = Chain(ROLE, engines)
        self._budgets = budgets or Budgets()
        self._report = report
        self.name = self._chain.name(self._chain.engines[0])

    @property
    def engines(self) -> list[AnySTT]:
        """The engines, in order."""
        return self._chain.engines

    async def open(
        self, sample_rate: int, on_interim: InterimListener | None = None
    ) -> FallbackSTTSession:
        """A session that starts on the first engine that opens."""
        session = FallbackSTTSession(
            self._chain, sample_rate, on_interim, self._budgets, self._report
        )
        await session.start()
        return session


class FallbackSTTSession:
    """A :class:`~voicebus.engines.streaming.STTSession` that fails over between engines."""

    def __init__(
        self,
        chain: Chain[AnySTT],
        sample_rate: int,
        on_interim: InterimListener | None,
        budgets: Budgets,
        report: Reporter,
    ) -> None:
        self._chain = chain
        self._rate = sample_rate
        self._on_interim = on_interim
        self._budgets = budgets
        self._report = report
        self._index = -1
        self._active: STTSession | None = None
        self._turns: deque[_Turn] = deque([_Turn()])  # closed turns awaiting finals, then open
        self._worker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self.engine = chain.name(chain.engines[0])

    async def start(self) -> None:
        """Open the first engine that opens (none: every turn fails over at its end)."""
        await self._switch(from_index=0, reason=None)

    def push(self, pcm16: bytes) -> None:
        """Keep the audio for replay and pass it to the active engine."""
        if self._closed:
            return
        self._turns[-1].audio += pcm16
        if self._active is not None:
            self._active.push(pcm16)
        self._trim()

    def end_turn(self) -> asyncio.Future[TranscriptUpdate]:
        """Close the open turn; its final comes from whichever engine delivers it."""
        turn = self._turns[-1]
        turn.result = asyncio.get_running_loop().create_future()
        if self._active is not None:
            turn.inner = _watched(self._active.end_turn())
        self._turns.append(_Turn())
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._deliver(), name="stt-fallback")
        self._wake.set()
        return turn.result

    async def aclose(self) -> None:
        """Stop; turns still waiting fail."""
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await self._close_active()
        for turn in self._turns:
            if turn.result is not None and not turn.result.done():
                turn.result.set_exception(EngineError("stt: session closed", kind="closed"))

    # -- internals -------------------------------------------------------------

    async def _deliver(self) -> None:
        """Resolve closed turns in order; fail over when the active engine fails one."""
        while self._turns and self._turns[0].result is not None:
            turn = self._turns[0]
            assert turn.result is not None
            if turn.inner is None:
                if not await self._failover("unavailable"):
                    self._fail_closed_turns()
                    return
                continue
            try:
                limit = self._budgets.limit(
                    self._budgets.final_transcript_s, last=self._chain.is_last(self._index)
                )
                async with asyncio.timeout(limit):
                    update = await asyncio.shield(turn.inner)
            except (EngineError, TimeoutError, OSError) as exc:
                name = self._chain.name(self._chain.engines[self._index])
                failure = classify(ROLE, name, exc)
                self._chain.breaker(self._chain.engines[self._index]).failure(
                    auth=isinstance(exc, EngineAuthError)
                )
                self._report(failure)
                if not await self._failover(failure.kind):
                    self._fail_closed_turns(exc)
                    return
                continue
            self._chain.breaker(self._chain.engines[self._index]).success()
            self._turns.popleft()
            if not turn.result.done():
                turn.result.set_result(update)

    async def _failover(self, reason: str) -> bool:
        """Move to the next engine and replay the kept audio. False when none is left."""
        await self._close_active()
        return await self._switch(from_index=self._index + 1, reason=reason)

    async def _switch(self, *, from_index: int, reason: str | None) -> bool:
        previous = self._index
        for index, engine in self._chain.candidates(from_index):
            name = self._chain.name(engine)
            try:
                session = await open_session(engine, self._rate, self._on_interim)
            except (EngineError, OSError, TimeoutError) as exc:
                self._chain.breaker(engine).failure(auth=isinstance(exc, EngineAuthError))
                self._report(classify(ROLE, name, exc))
                reason = reason or "unavailable"
                previous = index
                continue
            if reason is not None and previous >= 0:
                from_name = self._chain.name(self._chain.engines[previous])
                self._report(failover(ROLE, from_name, name, reason, "audio"))
            self._index, self._active, self.engine = index, session, name
            self._replay(session)
            return True
        self._index = -1 if from_index == 0 else len(self._chain.engines)
        return False

    def _replay(self, session: STTSession) -> None:
        for turn in self._turns:
            if turn.audio:
                session.push(bytes(turn.audio))
            if turn.result is not None:
                turn.inner = _watched(session.end_turn())

    def _fail_closed_turns(self, exc: BaseException | None = None) -> None:
        error = (
            exc
            if isinstance(exc, EngineError)
            else EngineError("stt: every engine failed", retryable=True, kind="unavailable")
        )
        while self._turns and self._turns[0].result is not None:
            turn = self._turns.popleft()
            assert turn.result is not None
            if not turn.result.done():
                turn.result.set_exception(error)
        # The next turn starts over from the first engine whose breaker allows it.
        self._index = -1
        self._active = None

    async def _close_active(self) -> None:
        session, self._active = self._active, None
        if session is not None:
            try:
                await session.aclose()
            except (EngineError, OSError):
                log.info("stt session close failed", extra={"engine": self.engine})

    def _trim(self) -> None:
        kept = sum(len(t.audio) for t in self._turns)
        while kept > MAX_KEPT_BYTES and len(self._turns) > 1 and self._turns[0].result is not None:
            turn = self._turns.popleft()
            kept -= len(turn.audio)
            if turn.result is not None and not turn.result.done():
                turn.result.set_exception(EngineError("stt: turn given up", kind="timeout"))


def _watched(future: asyncio.Future[TranscriptUpdate]) -> asyncio.Future[TranscriptUpdate]:
    """An engine's final, whose failure is handled even if nobody waits for it any more."""

    def retrieve(done: asyncio.Future[TranscriptUpdate]) -> None:
        if not done.cancelled():
            done.exception()

    future.add_done_callback(retrieve)
    return future
