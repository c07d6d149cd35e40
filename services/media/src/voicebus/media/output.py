"""The bus as the pipeline's transport, output side: agent audio out, paced, and barge-in.

The last processor of a call's pipeline. Synthesized audio is cut into frames
and sent on ``audio.out`` at real time with a small lead by one task per call;
playback marks confirm what played; caller speech over live agent audio pauses it,
and the :class:`~voicebus.media.barge_in.InterruptionGuard` decides whether the
caller's words cut it (``ctl.clear`` + ``agent.speech.interrupted`` with what
the caller heard) or it resumes where it stopped. Transcripts pass through here
on their way to :class:`~voicebus.media.transport.CallerEvents`, so that an
interruption's event always precedes the transcript that caused it. The
decisions are :class:`~voicebus.media.playback.Playout`'s and the guard's; this
class does the I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    UserSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection

from voicebus.contracts.audio import AudioFrame
from voicebus.media.barge_in import InterruptionGuard, Verdict
from voicebus.media.events import CallEvents
from voicebus.media.frames import (
    AgentAudioFrame,
    AgentChunkFrame,
    AgentUtteranceDoneFrame,
    CancelUtterancesFrame,
    MediaErrorFrame,
    PlaybackMarkFrame,
    TranscriptFrame,
    TranscriptInterimFrame,
    UserSpeechStartedFrame,
    UserTurnEndedFrame,
)
from voicebus.media.metrics import AGENT_PAUSES, INTERRUPTIONS, TURN_LATENCY, UNCONFIRMED_PLAYBACK
from voicebus.media.outlet import CallOutlet
from voicebus.media.playback import Finished, Playout
from voicebus.media.turn_clock import TurnClock
from voicebus.media.worker import WorkerProcessor

log = logging.getLogger(__name__)

# Frames that end here; caller speech frames and transcripts go on to CallerEvents.
_CONSUMED = (
    InputAudioRawFrame,
    UserSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    AgentChunkFrame,
    AgentAudioFrame,
    AgentUtteranceDoneFrame,
    PlaybackMarkFrame,
    MediaErrorFrame,
)


class BusOutput(WorkerProcessor):
    """Sends agent audio, reports agent speech, and handles barge-in.

    Args:
        outlet: where frames, events and ``clear`` go.
        events: builds the call's events.
        playout: the call's agent-speech state.
        guard: the call's false-interruption guard.
        allow_interruptions: the agent's turn setting; an utterance is cut only if
            both this and the utterance's own flag allow it.
    """

    def __init__(
        self,
        outlet: CallOutlet,
        events: CallEvents,
        playout: Playout,
        guard: InterruptionGuard,
        *,
        allow_interruptions: bool = True,
    ) -> None:
        super().__init__()
        self._outlet = outlet
        self._events = events
        self._playout = playout
        self._guard = guard
        self._allow = allow_interruptions
        self._wake = asyncio.Event()
        self._turn_clock = TurnClock()

    worker_name = "audio-out"

    def work(self) -> Coroutine[Any, Any, None]:
        """Send agent audio paced at real time."""
        return self._send_forever()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Feed the playout; handle marks and caller speech; pass lifecycle frames on."""
        await super().process_frame(frame, direction)
        now = time.monotonic()
        if isinstance(frame, AgentChunkFrame):
            self._playout.chunk(
                frame.utterance_id,
                frame.text,
                allow_interruptions=frame.allow_interruptions and self._allow,
                received_at=frame.received_at,
            )
        elif isinstance(frame, AgentAudioFrame):
            ends = [w.end_ms for w in frame.words]
            self._playout.audio(frame.utterance_id, frame.pcm, now, ends)
            self._wake.set()
        elif isinstance(frame, AgentUtteranceDoneFrame):
            self._playout.done(frame.utterance_id)
            self._wake.set()
        elif isinstance(frame, PlaybackMarkFrame):
            finished = self._playout.mark(frame.mark)
            if finished is not None:
                self._finished(finished)
        elif isinstance(frame, UserSpeechStartedFrame):
            verdict = self._guard.speech_started(agent_interruptible=self._playout.interruptible)
            await self._apply(verdict, now)
        elif isinstance(frame, UserTurnEndedFrame):
            self._guard.turn_ended(now)
            if frame.speech_ended_at is not None:
                self._turn_clock.turn_ended(frame.speech_ended_at)
            self._wake.set()  # the sender watches the guard's deadline
        elif isinstance(frame, TranscriptInterimFrame):
            await self._apply(self._guard.interim(frame.text), now)
        elif isinstance(frame, TranscriptFrame):
            judged = self._guard.transcript(frame.text, frame.end_ms - frame.start_ms)
            frame.backchannel = judged.backchannel
            if judged.backchannel or not frame.text.strip():
                self._turn_clock.no_reply()
            await self._apply(judged.verdict, now)
        elif isinstance(frame, MediaErrorFrame):
            self._outlet.emit(
                self._events.error(frame.code, frame.message, retryable=frame.retryable)
            )
        else:
            await self.follow_lifecycle(frame)
        if not isinstance(frame, _CONSUMED):
            await self.push_frame(frame, direction)

    async def _apply(self, verdict: Verdict, now: float) -> None:
        if verdict is Verdict.PAUSE:
            AGENT_PAUSES.labels("paused").inc()
            self._playout.pause()
        elif verdict is Verdict.RESUME:
            AGENT_PAUSES.labels("resumed").inc()
            self._playout.resume()
            self._wake.set()
        elif verdict is Verdict.INTERRUPT:
            await self._barge_in(now)

    async def _barge_in(self, now: float) -> None:
        cut = self._playout.interrupt(now)  # state changes before any await
        if not cut:
            return
        self._wake.set()
        INTERRUPTIONS.inc(len(cut))
        await self.push_frame(
            CancelUtterancesFrame(tuple(c.utterance_id for c in cut)), FrameDirection.UPSTREAM
        )
        if any(c.sent_audio for c in cut):
            await self._outlet.clear(cut[0].utterance_id)
        for interrupted in cut:
            self._outlet.emit(self._events.agent_interrupted(interrupted))

    def _finished(self, finished: Finished) -> None:
        if not finished.confirmed:
            UNCONFIRMED_PLAYBACK.inc()
        self._outlet.emit(self._events.agent_stopped(finished))

    async def _send_forever(self) -> None:
        loop = asyncio.get_running_loop()
        rate = self._playout.sample_rate
        while True:
            self._wake.clear()
            now = time.monotonic()
            frames, started = self._playout.due(now)
            for utterance in started:
                self._outlet.emit(self._events.agent_started(utterance))
                latency = self._turn_clock.agent_audio_started(now)
                if latency is not None:
                    TURN_LATENCY.observe(latency)
            for out in frames:
                if not self._playout.is_live(out.utterance_id):
                    continue  # cut by the caller while earlier frames were being sent
                await self._outlet.send_audio(
                    AudioFrame(out.pcm, rate, out.seq, out.ts_ms, out.utterance_id, last=out.last)
                )
            for finished in self._playout.expire(now):
                self._finished(finished)
            if self._guard.expired(now) is Verdict.RESUME:  # a transcript never came
                AGENT_PAUSES.labels("timed_out").inc()
                self._playout.resume()
                continue
            now = time.monotonic()
            wait = self._playout.wait_s(now)
            deadline = self._guard.deadline()
            if deadline is not None:
                wait = max(0.0, deadline - now if wait is None else min(wait, deadline - now))
            if wait is None:
                await self._wake.wait()
            elif wait == 0:
                await asyncio.sleep(0)
            else:
                timer = loop.call_later(wait, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    timer.cancel()
