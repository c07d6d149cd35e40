"""The caller's turns: from VAD speech segments to one audio clip per turn.

Sits after pipecat's ``VADProcessor``. Without smart turn, a turn ends when the
VAD stops (``TurnSettings.vad_stop_ms`` of silence). With smart turn, the VAD
stop asks pipecat's smart-turn v3 model whether the caller finished; if not, the
turn stays open and further speech joins it, until the model says so or the
silence reaches the analyzer's own ``stop_secs``.

While the agent is held for the caller, or answering-machine detection waits
for a decision (:class:`~voicebus.media.barge_in.Floor`), a turn the model
keeps open still ends after ``quick_stop_ms`` more of silence (not the
analyzer's seconds): a held agent must not wait long on a cough or a "mhm",
and the detector needs the callee's words in time.

The model is asked early: once the VAD has heard ``early_check_ms`` of the
silence it waits for (``vad_stop_ms``), the model checks the audio so far in
the background; when the VAD confirms the stop with no speech in between, that
answer is used (its ~45 ms are then off the caller's wait). Speech in between
drops it.

Every VAD start is reported (barge-in needs it); only the first of a turn is a
new turn. The clip starts ``preroll_ms`` before the estimated speech onset,
since the VAD confirms speech only after ``min_speech_ms`` of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from opentelemetry import trace
from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, EndOfTurnState
from pipecat.audio.vad.vad_analyzer import VADState
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    StartFrame,
    UserSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from voicebus.media.barge_in import Floor
from voicebus.media.frames import (
    CallerAudioFrame,
    UserSpeechStartedFrame,
    UserTurnAudioFrame,
    UserTurnEndedFrame,
)
from voicebus.media.metrics import SMART_TURN_CHECKS, STAGE_SECONDS
from voicebus.media.models import SharedSmartTurnAnalyzer
from voicebus.media.pacing import audio_ms, bytes_per_ms

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class UserTurnProcessor(FrameProcessor):
    """Cuts the caller's audio into turns (direct mode: runs on the audio path).

    Args:
        sample_rate: the call's audio rate.
        vad_start_ms: speech the VAD needs before it confirms a start (its ``start_secs``).
        vad_stop_ms: silence the VAD needs before it confirms a stop (its ``stop_secs``).
        preroll_ms: audio kept before the estimated onset.
        max_turn_ms: a turn this long ends even if the caller goes on speaking.
        turn_analyzer: smart turn detection, or None to end turns on VAD stops.
        floor: the call's floor state (quick turns while it asks), or None.
        quick_stop_ms: silence after which a quick turn ends whatever the model says.
        vad_state: the VAD's state now (its STOPPING stretch starts the early check),
            or None for no early check.
        early_check_ms: silence into the VAD's stop at which the model is asked early.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        vad_start_ms: int,
        vad_stop_ms: int,
        preroll_ms: int = 300,
        max_turn_ms: int = 30_000,
        turn_analyzer: BaseTurnAnalyzer | None = None,
        floor: Floor | None = None,
        quick_stop_ms: int = 300,
        vad_state: Callable[[], VADState] | None = None,
        early_check_ms: int = 100,
    ) -> None:
        super().__init__(enable_direct_mode=True)
        self._rate = sample_rate
        self._start_ms = vad_start_ms
        self._stop_ms = vad_stop_ms
        self._preroll_bytes = int((preroll_ms + vad_start_ms + 100) * bytes_per_ms(sample_rate))
        self._max_turn_ms = max_turn_ms
        self._analyzer = turn_analyzer
        self._floor = floor or Floor()
        self._quick_stop_ms = quick_stop_ms
        self._force_end_at: float | None = None  # media ms at which a quick turn ends
        self._vad_state = vad_state if isinstance(turn_analyzer, SharedSmartTurnAnalyzer) else None
        self._early_check_ms = early_check_ms
        self._stopping_since: float | None = None
        self._early: asyncio.Task[EndOfTurnState] | None = None
        self._preroll: deque[bytes] = deque()
        self._preroll_len = 0
        self._turn = bytearray()
        self._open = False
        self._speaking = False
        self._turn_start_ms = 0
        self._speech_end_ms = 0
        self._now_ms = 0.0  # end of the latest audio, on the media timeline
        self._span: trace.Span = trace.INVALID_SPAN  # the open turn's; STT ends it

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Track audio and VAD transitions; caller audio ends here, other frames go on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self._on_audio(frame)
            return  # nothing downstream needs raw audio: turns carry theirs
        if isinstance(frame, UserSpeakingFrame):
            return
        if isinstance(frame, VADUserStartedSpeakingFrame):
            await self._on_speech_start()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            await self._on_speech_stop()
        elif isinstance(frame, StartFrame) and self._analyzer is not None:
            self._analyzer.set_sample_rate(self._rate)
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        """Release the turn analyzer."""
        await super().cleanup()  # type: ignore[no-untyped-call]  # unannotated in pipecat
        if self._analyzer is not None:
            await self._analyzer.cleanup()  # type: ignore[no-untyped-call]  # unannotated in pipecat
        self._span.end()  # a turn still open when the call ends

    async def _on_audio(self, frame: InputAudioRawFrame) -> None:
        if isinstance(frame, CallerAudioFrame):
            self._now_ms = frame.ts_ms
        self._now_ms += audio_ms(len(frame.audio), self._rate)
        if self._open:
            self._turn += frame.audio
            await self.push_frame(UserTurnAudioFrame(audio=frame.audio))  # streaming STT
        else:
            self._preroll.append(frame.audio)
            self._preroll_len += len(frame.audio)
            while self._preroll_len - len(self._preroll[0]) >= self._preroll_bytes:
                self._preroll_len -= len(self._preroll.popleft())
        if self._analyzer is not None:
            state = self._analyzer.append_audio(frame.audio, self._speaking)
            if state == EndOfTurnState.COMPLETE and self._open and not self._speaking:
                await self._end_turn(self._speech_end_ms)
            self._maybe_check_early()
        if self._force_end_at is not None and self._now_ms >= self._force_end_at:
            if self._open and not self._speaking:
                await self._end_turn(self._speech_end_ms)
            self._force_end_at = None
        if self._open and self._now_ms - self._turn_start_ms >= self._max_turn_ms:
            await self._end_turn(round(self._now_ms))
            if self._speaking:
                await self._open_turn(round(self._now_ms))

    async def _on_speech_start(self) -> None:
        self._speaking = True
        self._force_end_at = None
        if self._open:
            await self.push_frame(UserSpeechStartedFrame(at_ms=self._onset_ms(), new_turn=False))
            return
        self._turn = bytearray(b"".join(self._preroll))
        self._preroll.clear()
        self._preroll_len = 0
        await self._open_turn(self._onset_ms())
        if self._turn:
            await self.push_frame(UserTurnAudioFrame(audio=bytes(self._turn)))

    async def _on_speech_stop(self) -> None:
        self._speaking = False
        if not self._open:
            return
        self._speech_end_ms = max(self._turn_start_ms, round(self._now_ms - self._stop_ms))
        early, self._early, self._stopping_since = self._early, None, None
        if self._analyzer is not None:
            if early is not None:
                state = await early
            else:
                state, _metrics = await self._analyzer.analyze_end_of_turn()
            SMART_TURN_CHECKS.labels(str(state == EndOfTurnState.COMPLETE).lower()).inc()
            if state != EndOfTurnState.COMPLETE or self._speaking or not self._open:
                if self._floor.quick_turns and self._open and not self._speaking:
                    self._force_end_at = self._now_ms + self._quick_stop_ms
                return  # the caller may go on: keep the turn open
        await self._end_turn(self._speech_end_ms)

    def _maybe_check_early(self) -> None:
        """Ask the model in the background once the VAD's stop is under way."""
        if self._vad_state is None or not self._speaking or not self._open:
            return
        state = self._vad_state()
        if state in (VADState.SPEAKING, VADState.STARTING):
            self._stopping_since = None
            self._early = None  # speech again: an answer asked before no longer holds
            return
        if state is not VADState.STOPPING:
            return  # QUIET: the stop frame follows this audio
        if self._stopping_since is None:
            self._stopping_since = self._now_ms
        elif self._early is None and self._now_ms - self._stopping_since >= self._early_check_ms:
            assert isinstance(self._analyzer, SharedSmartTurnAnalyzer)
            self._early = asyncio.create_task(self._analyzer.predict_now())
            self._early.add_done_callback(_consume)

    async def _open_turn(self, at_ms: int) -> None:
        self._open = True
        self._turn_start_ms = at_ms
        self._span.end()  # a no-op unless the previous turn never ended
        self._span = tracer.start_span("turn", attributes={"voicebus.turn.start_ms": at_ms})
        await self.push_frame(UserSpeechStartedFrame(at_ms=at_ms, new_turn=True))

    async def _end_turn(self, end_ms: int) -> None:
        audio, self._turn = bytes(self._turn), bytearray()
        self._open = False
        self._force_end_at = None
        if self._analyzer is not None:
            self._analyzer.clear()  # type: ignore[no-untyped-call]  # unannotated in pipecat
        now = time.monotonic()
        wait_s = max(0.0, self._now_ms - end_ms) / 1000
        detector = "vad" if self._analyzer is None else "smart_turn"
        STAGE_SECONDS.labels("end_of_turn", detector).observe(wait_s)
        span, self._span = self._span, trace.INVALID_SPAN
        span.add_event("end_of_turn", {"voicebus.detector": detector, "voicebus.wait_s": wait_s})
        await self.push_frame(
            UserTurnEndedFrame(
                audio=audio,
                sample_rate=self._rate,
                start_ms=self._turn_start_ms,
                end_ms=max(end_ms, self._turn_start_ms),
                ended_at=now,
                speech_ended_at=now - wait_s,
                trace=trace.set_span_in_context(span) if span.is_recording() else None,
            )
        )

    def _onset_ms(self) -> int:
        return max(0, round(self._now_ms - self._start_ms))


def _consume(task: asyncio.Task[EndOfTurnState]) -> None:
    """An early check nobody awaits any more: its failure is logged, not left pending."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("early smart-turn check failed", exc_info=task.exception())
