"""One call's pipecat pipeline, whose transport is the bus.

    BusInput → VADProcessor (Silero) → [AmdWatch] → UserTurnProcessor (+ smart turn) → STTProcessor
      → TTSProcessor → BusOutput (pacing, barge-in guard) → CallerEvents

Every processor runs in pipecat's direct mode: a frame goes through the chain on
the task that received it from NATS, with no queue and no task switch per
processor (queued processors cost ~25 % more CPU per call-second). Caller audio
stops at the turn processor, which hands each turn's audio on as one frame: every
hop costs pipecat's per-frame bookkeeping, 50 times a second per call. Each call
has its own ``WorkerRunner``: a runner never forgets a worker it ran, so one
runner for the whole process would grow with every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass

from opentelemetry.context import Context
from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.frames.frames import Frame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.workers.runner import WorkerRunner

from voicebus.contracts.audio import AudioFrame, PlaybackMark
from voicebus.contracts.commands import SayData
from voicebus.contracts.rpc import TurnSettings
from voicebus.engines.base import STTEngine, TTSEngine
from voicebus.engines.streaming import StreamingSTT, TimedTTS
from voicebus.media.amd import MachineDetector
from voicebus.media.amd_watch import AmdWatch
from voicebus.media.backchannels import Backchannels
from voicebus.media.barge_in import Floor, GuardSettings, InterruptionGuard
from voicebus.media.events import CallEvents
from voicebus.media.models import vad_state
from voicebus.media.outlet import CallOutlet
from voicebus.media.output import BusOutput
from voicebus.media.pacing import MediaClock
from voicebus.media.playback import Playout
from voicebus.media.stt import STTProcessor
from voicebus.media.transport import BusInput, CallerEvents
from voicebus.media.tts import TTSProcessor
from voicebus.media.turns import UserTurnProcessor
from voicebus.media.voices import Voices

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Everything one call's pipeline is built from.

    Attributes:
        sample_rate: the call's audio rate (8000 or 16000: Silero's rates).
        turn: the agent's turn-taking settings.
        vad: the call's VAD analyzer (its ``start_secs``/``stop_secs`` follow ``turn``).
        turn_analyzer: smart turn detection, or None.
        stt: the STT engines (a streaming fallback chain), or None when none could be created.
        tts: the TTS engines (a fallback chain), or None when none could be created.
        voices: the voices of other agents speaking on the call (a handoff); None: all
            speech in ``tts``.
        lead_ms: how far ahead of real time agent audio is sent.
        frame_ms: frame duration of agent audio.
        mark_grace_ms: see :class:`~voicebus.media.playback.Playout`.
        preroll_ms: audio kept before the caller's estimated speech onset.
        max_turn_ms: the longest caller turn.
        language: the agent's language (its built-in backchannels).
        amd: answering-machine detection for this call, or None.
        early_check: ask smart turn halfway through the VAD's stop (lower latency, a few
            more checks).
        hold_timeout_s: agent paused for a caller turn whose transcript never comes
            resumes this long after the turn ended.
    """

    sample_rate: int
    turn: TurnSettings
    vad: VADAnalyzer
    turn_analyzer: BaseTurnAnalyzer | None
    stt: StreamingSTT | STTEngine | None
    tts: TTSEngine | TimedTTS | None
    lead_ms: int = 160
    frame_ms: int = 20
    mark_grace_ms: int = 1000
    preroll_ms: int = 300
    max_turn_ms: int = 30_000
    language: str = "en"
    hold_timeout_s: float = 3.0
    amd: MachineDetector | None = None
    early_check: bool = True
    voices: Voices | None = None


class CallPipeline:
    """A call's pipeline and its runner.

    Args:
        config: what to build it from.
        outlet: where its output goes.
        events: builds the call's events.
        started_at: monotonic time the call started (origin of the media clock).
    """

    def __init__(
        self, config: PipelineConfig, outlet: CallOutlet, events: CallEvents, started_at: float
    ) -> None:
        self.clock = MediaClock(started_at)
        self.input = BusInput(self.clock)
        playout = Playout(
            config.sample_rate,
            self.clock,
            frame_ms=config.frame_ms,
            lead_ms=config.lead_ms,
            mark_grace_ms=config.mark_grace_ms,
        )
        turn = config.turn
        floor = Floor()
        guard = InterruptionGuard(
            GuardSettings(
                min_words=turn.interruption_min_words,
                min_speech_ms=turn.interruption_min_speech_ms,
                hold_timeout_s=config.hold_timeout_s,
            ),
            Backchannels.for_language(config.language, turn.backchannels),
            floor,
        )
        amd = None
        if config.amd is not None:
            amd = AmdWatch(config.amd, turn.min_speech_ms, turn.vad_stop_ms, outlet, events, floor)
        processors = [
            self.input,
            VADProcessor(vad_analyzer=config.vad, enable_direct_mode=True),
            *([amd] if amd is not None else []),
            UserTurnProcessor(
                sample_rate=config.sample_rate,
                vad_start_ms=config.turn.min_speech_ms,
                vad_stop_ms=config.turn.vad_stop_ms,
                preroll_ms=config.preroll_ms,
                max_turn_ms=config.max_turn_ms,
                turn_analyzer=config.turn_analyzer,
                floor=floor,
                vad_state=functools.partial(vad_state, config.vad) if config.early_check else None,
                early_check_ms=turn.vad_stop_ms // 2,
            ),
            STTProcessor(config.stt, sample_rate=config.sample_rate),
            TTSProcessor(config.tts, sample_rate=config.sample_rate, voices=config.voices),
            BusOutput(outlet, events, playout, guard, allow_interruptions=turn.allow_interruptions),
            CallerEvents(outlet, events, amd.heard if amd is not None else None),
        ]
        self._worker = PipelineWorker(
            Pipeline(processors),
            name=f"media-{events.call_id}",
            enable_rtvi=False,
            enable_turn_tracking=False,
            idle_timeout_secs=None,
            cancel_on_idle_timeout=False,
            check_dangling_tasks=False,
            params=PipelineParams(
                audio_in_sample_rate=config.sample_rate, audio_out_sample_rate=config.sample_rate
            ),
        )
        self._started = asyncio.Event()
        self._runner: WorkerRunner | None = None
        self._run_task: asyncio.Task[None] | None = None

        async def on_started(_worker: PipelineWorker, _frame: Frame) -> None:
            self._started.set()

        self._worker.add_event_handler("on_pipeline_started", on_started)

    async def start(self, timeout_s: float = 10.0) -> None:
        """Run the pipeline; return once every processor has its ``StartFrame``.

        Raises:
            TimeoutError: the pipeline did not start in time (it is stopped again).
        """
        self._runner = WorkerRunner(
            handle_sigint=False, handle_sigterm=False, check_dangling_tasks=False
        )
        await self._runner.add_workers(self._worker)
        self._run_task = asyncio.create_task(self._runner.run(), name=self._worker.name)
        try:
            await asyncio.wait_for(self._started.wait(), timeout_s)
        except TimeoutError:
            await self.stop()
            raise

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._started.is_set() and self._run_task is not None

    async def audio(self, frame: AudioFrame) -> None:
        """Caller audio."""
        await self.input.audio(frame)

    async def say(self, say: SayData, trace: Context | None = None) -> None:
        """A ``ctl.say`` chunk (``trace``: its message's trace context)."""
        await self.input.say(say, trace)

    async def mark(self, mark: PlaybackMark) -> None:
        """A playback mark."""
        await self.input.mark(mark)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel the pipeline and wait until every processor and task is gone (idempotent)."""
        runner, task = self._runner, self._run_task
        self._runner = self._run_task = None
        if runner is None or task is None:
            return
        await runner.cancel(reason="call ended")
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            log.warning("pipeline stop timed out", extra={"pipeline": self._worker.name})
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
