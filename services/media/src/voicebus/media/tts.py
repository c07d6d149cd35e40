"""Text to speech for ``ctl.say`` chunks, with the call's ``TTSEngine``.

Chunks are put in order per utterance (:class:`~voicebus.media.say.SayAssembler`)
and synthesized one after another by one task per call, ahead of playback: the
output paces what this produces. An utterance the caller cut stops being
synthesized at the next piece of audio, and its later chunks are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameDirection

from voicebus.contracts.events import ErrorCode
from voicebus.engines.base import EngineError, TTSEngine
from voicebus.engines.streaming import SpeechChunk, TimedTTS, synthesize_timed
from voicebus.media.frames import (
    AgentAudioFrame,
    AgentChunkFrame,
    AgentUtteranceDoneFrame,
    CancelUtterancesFrame,
    MediaErrorFrame,
    SayFrame,
)
from voicebus.media.metrics import ENGINE_ERRORS, SAY_DROPPED, STAGE_SECONDS
from voicebus.media.say import SayAssembler, SayChunk
from voicebus.media.voices import Voices
from voicebus.media.worker import WorkerProcessor

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class TTSProcessor(WorkerProcessor):
    """Turns :class:`SayFrame` into agent chunk, audio and done frames.

    Args:
        engine: the call's TTS engine, or None when it could not be created
            (chunks then pass with no audio, so nothing is spoken).
        sample_rate: the call's audio rate.
        remember: interrupted utterance ids remembered to drop their late chunks.
        voices: each speaking agent's engine (a handoff's agent speaks in its own voice);
            None: every chunk is spoken with ``engine``.
    """

    worker_name = "tts"

    def __init__(
        self,
        engine: TTSEngine | TimedTTS | None,
        *,
        sample_rate: int,
        remember: int = 256,
        voices: Voices | None = None,
    ) -> None:
        super().__init__()
        self._engine = engine
        self._voices = voices
        self._rate = sample_rate
        self._assembler = SayAssembler()
        self._chunks: asyncio.Queue[SayChunk] = asyncio.Queue()
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        # The trace context of each utterance's latest ``ctl.say`` (traced ones only).
        self._traces: OrderedDict[str, Context] = OrderedDict()

    def work(self) -> Coroutine[Any, Any, None]:
        """Synthesize chunk after chunk."""
        return self._speak_forever()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Queue ready chunks; cancel cut utterances; forward everything else."""
        await super().process_frame(frame, direction)
        if isinstance(frame, SayFrame):
            self._accept(frame)
            return
        if isinstance(frame, CancelUtterancesFrame):
            for utterance_id in frame.utterance_ids:
                self._cancel(utterance_id)
            return
        await self.follow_lifecycle(frame)
        await self.push_frame(frame, direction)

    def _accept(self, frame: SayFrame) -> None:
        if frame.trace is not None:
            self._traces[frame.say.utterance_id] = frame.trace
            while len(self._traces) > self._remember:
                self._traces.popitem(last=False)
        outcome = self._assembler.add(frame.say, frame.received_at)
        if outcome.dropped is not None:
            SAY_DROPPED.labels(outcome.dropped.value).inc()
        for chunk in outcome.ready:
            self._chunks.put_nowait(chunk)

    def _cancel(self, utterance_id: str) -> None:
        self._assembler.close(utterance_id)
        self._cancelled[utterance_id] = None
        while len(self._cancelled) > self._remember:
            self._cancelled.popitem(last=False)

    async def _speak_forever(self) -> None:
        while True:
            chunk = await self._chunks.get()
            if chunk.utterance_id in self._cancelled:
                continue
            await self.push_frame(
                AgentChunkFrame(
                    utterance_id=chunk.utterance_id,
                    seq=chunk.seq,
                    text=chunk.text,
                    allow_interruptions=chunk.allow_interruptions,
                    received_at=chunk.received_at,
                )
            )
            engine = (
                self._engine if self._voices is None else await self._voices.engine(chunk.agent_id)
            )
            if engine is not None and chunk.text.strip():
                await self._synthesize(engine, chunk)
            if chunk.final and chunk.utterance_id not in self._cancelled:
                await self.push_frame(AgentUtteranceDoneFrame(utterance_id=chunk.utterance_id))

    async def _synthesize(self, engine: TTSEngine | TimedTTS, chunk: SayChunk) -> None:
        context = self._traces.get(chunk.utterance_id)
        if chunk.final:
            self._traces.pop(chunk.utterance_id, None)
        if context is None:
            await self._speak(engine, chunk, trace.INVALID_SPAN)
            return
        attributes: dict[str, str | int] = {
            "voicebus.engine": engine.name,
            "voicebus.seq": chunk.seq,
        }
        with tracer.start_as_current_span("tts", context, attributes=attributes) as span:
            await self._speak(engine, chunk, span)

    async def _speak(self, engine: TTSEngine | TimedTTS, chunk: SayChunk, span: trace.Span) -> None:
        stream: AsyncIterator[SpeechChunk] = synthesize_timed(engine, chunk.text, self._rate)
        first = True
        try:
            async for speech in stream:
                if chunk.utterance_id in self._cancelled:
                    break
                if first:
                    span.add_event("first_audio")
                if first and chunk.seq == 0:
                    STAGE_SECONDS.labels("tts_first_audio", engine.name).observe(
                        max(0.0, time.monotonic() - chunk.received_at)
                    )
                first = False
                await self.push_frame(
                    AgentAudioFrame(
                        utterance_id=chunk.utterance_id, pcm=speech.pcm, words=speech.words
                    )
                )
        except Exception as exc:  # one failed chunk must not silence the rest of the call
            ENGINE_ERRORS.labels("tts").inc()
            span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
            log.warning("synthesis failed", exc_info=True, extra={"engine": engine.name})
            retryable = isinstance(exc, EngineError) and exc.retryable
            await self.push_frame(
                MediaErrorFrame(ErrorCode.ENGINE_ERROR, f"tts {engine.name}: {exc}", retryable)
            )
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
