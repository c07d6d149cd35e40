"""Speech to text while the caller speaks, through the call's STT session.

The session (:mod:`voicebus.engines.streaming`) is opened when the pipeline starts
and gets the caller's audio as each turn goes on (:class:`UserTurnAudioFrame`);
each turn's end closes the turn in the session at once (the boundary is exact even
if the previous final is still being computed) and its final is awaited, turn
after turn in order, off the audio path. Interim results become
``transcript.partial``. Engines that only transcribe whole segments are adapted by
the session; fallback between engines happens inside it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameDirection

from voicebus.contracts.events import ErrorCode
from voicebus.contracts.ids import new_id
from voicebus.engines.base import EngineError, STTEngine
from voicebus.engines.streaming import (
    StreamingSTT,
    STTSession,
    TranscriptUpdate,
    open_session,
)
from voicebus.media.frames import (
    MediaErrorFrame,
    TranscriptFrame,
    TranscriptInterimFrame,
    UserTurnAudioFrame,
    UserTurnEndedFrame,
)
from voicebus.media.metrics import ENGINE_ERRORS, STAGE_SECONDS
from voicebus.media.worker import WorkerProcessor

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(slots=True)
class _Turn:
    utterance_id: str
    frame: UserTurnEndedFrame | None = None
    final: asyncio.Future[TranscriptUpdate] | None = None


class STTProcessor(WorkerProcessor):
    """Feeds turns' audio to the STT session; :class:`TranscriptFrame` per turn (empty text:
    no words; the barge-in guard awaits it).

    Args:
        engine: the call's STT (a fallback chain), or None when none could be created.
        sample_rate: the call's audio rate.
    """

    worker_name = "stt"

    def __init__(self, engine: StreamingSTT | STTEngine | None, *, sample_rate: int = 8000) -> None:
        super().__init__()
        self._engine = engine
        self._rate = sample_rate
        self._session: STTSession | None = None
        self._waiting_audio: list[bytes] = []  # before the session is open
        self._turn = _Turn(f"u-{new_id()}")
        self._turns: asyncio.Queue[_Turn] = asyncio.Queue()
        self._interims: asyncio.Queue[TranscriptInterimFrame] = asyncio.Queue()

    def work(self) -> Coroutine[Any, Any, None] | None:
        """Open the session, then deliver finals and interims (nothing without an engine)."""
        return None if self._engine is None else self._run(self._engine)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Stream turn audio; close turns; forward every other frame."""
        await super().process_frame(frame, direction)
        if isinstance(frame, UserTurnAudioFrame):
            if self._session is not None:
                self._session.push(frame.audio)
            elif self._engine is not None:
                self._waiting_audio.append(frame.audio)
            return
        if isinstance(frame, UserTurnEndedFrame) and self._engine is not None:
            turn, self._turn = self._turn, _Turn(f"u-{new_id()}")
            turn.frame = frame
            if self._session is not None:
                turn.final = self._session.end_turn()
            self._turns.put_nowait(turn)
        await self.follow_lifecycle(frame)
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        """Close the session."""
        await super().cleanup()
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    def _on_interim(self, update: TranscriptUpdate) -> None:
        if update.text:
            self._interims.put_nowait(TranscriptInterimFrame(self._turn.utterance_id, update.text))

    async def _run(self, engine: StreamingSTT | STTEngine) -> None:
        try:
            session = await open_session(engine, self._rate, self._on_interim)
        except EngineError as exc:
            await self._failed(engine.name, exc)
            return
        for audio in self._waiting_audio:
            session.push(audio)
        self._waiting_audio.clear()
        self._session = session
        await asyncio.gather(self._finals(session, engine.name), self._pump_interims())

    async def _pump_interims(self) -> None:
        while True:
            await self.push_frame(await self._interims.get())

    async def _finals(self, session: STTSession, name: str) -> None:
        while True:
            turn = await self._turns.get()
            if turn.final is None:  # the turn ended before the session opened
                turn.final = session.end_turn()
            assert turn.frame is not None
            context = turn.frame.trace
            turn_span = trace.get_current_span(context) if context is not None else None
            # Started when the turn ended: the final transcript is awaited from then on.
            waited_ns = int(max(0.0, time.monotonic() - turn.frame.ended_at) * 1e9)
            span = tracer.start_span(
                "stt", context, attributes={"voicebus.engine": name},
                start_time=time.time_ns() - waited_ns,
            )  # fmt: skip
            try:
                result = await turn.final
            except Exception as exc:  # one failed turn must not end transcription for the call
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
                span.end()
                if turn_span is not None:
                    turn_span.end()
                await self._failed(name, exc)
                continue
            span.end()
            latency = max(0.0, time.monotonic() - turn.frame.ended_at)
            STAGE_SECONDS.labels("stt", result.engine or name).observe(latency)
            text = result.text.strip()  # empty goes on too: the barge-in guard awaits it
            await self.push_frame(
                TranscriptFrame(
                    utterance_id=turn.utterance_id,
                    text=text,
                    language=result.language,
                    confidence=result.confidence,
                    start_ms=turn.frame.start_ms,
                    end_ms=turn.frame.end_ms,
                    latency_ms=latency * 1000,
                    engine=result.engine or name,
                    trace=context,
                )
            )
            if turn_span is not None:
                turn_span.end()

    async def _failed(self, name: str, exc: BaseException) -> None:
        ENGINE_ERRORS.labels("stt").inc()
        log.warning("transcription failed", extra={"engine": name})
        retryable = isinstance(exc, EngineError) and exc.retryable
        await self.push_frame(
            MediaErrorFrame(ErrorCode.ENGINE_ERROR, f"stt {name}: {exc}"[:2000], retryable)
        )
