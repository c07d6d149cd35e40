"""Speech to text on each finished caller turn, with the call's ``STTEngine``.

Transcription runs in one task per call, turn after turn in order, off the audio
path: the engine itself runs its model in a worker thread, so a slow
transcription delays neither this call's audio nor any other call's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameDirection

from voicebus.contracts.events import ErrorCode
from voicebus.contracts.ids import new_id
from voicebus.engines.base import EngineError, STTEngine
from voicebus.media.frames import MediaErrorFrame, TranscriptFrame, UserTurnEndedFrame
from voicebus.media.metrics import ENGINE_ERRORS, STAGE_SECONDS
from voicebus.media.worker import WorkerProcessor

log = logging.getLogger(__name__)


class STTProcessor(WorkerProcessor):
    """Turns :class:`UserTurnEndedFrame` into :class:`TranscriptFrame` (empty text: no words).

    Args:
        engine: the call's STT engine, or None when it could not be created.
    """

    worker_name = "stt"

    def __init__(self, engine: STTEngine | None) -> None:
        super().__init__()
        self._engine = engine
        self._turns: asyncio.Queue[UserTurnEndedFrame] = asyncio.Queue()

    def work(self) -> Coroutine[Any, Any, None] | None:
        """Transcribe turn after turn (nothing without an engine)."""
        return None if self._engine is None else self._transcribe_forever(self._engine)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Queue finished turns for transcription; forward every frame."""
        await super().process_frame(frame, direction)
        if isinstance(frame, UserTurnEndedFrame) and self._engine is not None:
            self._turns.put_nowait(frame)
        await self.follow_lifecycle(frame)
        await self.push_frame(frame, direction)

    async def _transcribe_forever(self, engine: STTEngine) -> None:
        while True:
            turn = await self._turns.get()
            try:
                result = await engine.transcribe(turn.audio, turn.sample_rate)
            except Exception as exc:  # one failed turn must not end transcription for the call
                ENGINE_ERRORS.labels("stt").inc()
                log.warning("transcription failed", exc_info=True, extra={"engine": engine.name})
                retryable = isinstance(exc, EngineError) and exc.retryable
                await self.push_frame(
                    MediaErrorFrame(ErrorCode.ENGINE_ERROR, f"stt {engine.name}: {exc}", retryable)
                )
                continue
            latency = max(0.0, time.monotonic() - turn.ended_at)
            STAGE_SECONDS.labels("stt").observe(latency)
            text = result.text.strip()  # empty goes on too: the barge-in guard awaits it
            await self.push_frame(
                TranscriptFrame(
                    utterance_id=f"u-{new_id()}",
                    text=text,
                    language=result.language,
                    confidence=result.confidence,
                    start_ms=turn.start_ms,
                    end_ms=turn.end_ms,
                    latency_ms=latency * 1000,
                    engine=engine.name,
                )
            )
