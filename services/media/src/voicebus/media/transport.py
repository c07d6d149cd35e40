"""The bus as the pipeline's transport, input side: frames in, caller events out.

:class:`BusInput` is the pipeline's first processor: the call's subscriptions
hand it caller audio (``audio.in``), ``ctl.say`` chunks and playback marks.
:class:`CallerEvents` turns the caller's speech and transcripts into events.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry.context import Context
from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from voicebus.contracts.audio import AudioFrame, PlaybackMark
from voicebus.contracts.commands import SayData
from voicebus.contracts.events import TranscriptFinalData
from voicebus.contracts.text import strip_control
from voicebus.media.events import CallEvents
from voicebus.media.frames import (
    CallerAudioFrame,
    MediaErrorFrame,
    PlaybackMarkFrame,
    SayFrame,
    TranscriptFrame,
    TranscriptInterimFrame,
    UserSpeechStartedFrame,
    UserTurnEndedFrame,
)
from voicebus.media.outlet import CallOutlet
from voicebus.media.pacing import MediaClock
from voicebus.runtime.telemetry import within


class BusInput(FrameProcessor):
    """Feeds what the call's subscriptions receive into the pipeline.

    Caller audio becomes :class:`CallerAudioFrame` (pipecat's ``InputAudioRawFrame``
    with its media timestamp); the call's :class:`MediaClock` learns the
    provider's clock from it.

    Args:
        clock: the call's media clock.
    """

    def __init__(self, clock: MediaClock) -> None:
        super().__init__(enable_direct_mode=True)
        self._clock = clock

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Forward every frame."""
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)

    async def audio(self, frame: AudioFrame) -> None:
        """Caller audio from ``audio.in`` (already decoded and checked)."""
        self._clock.observe(frame.ts_ms, time.monotonic())
        await self.push_frame(
            CallerAudioFrame(
                audio=frame.pcm, sample_rate=frame.sample_rate, num_channels=1, ts_ms=frame.ts_ms
            )
        )

    async def say(self, say: SayData, trace: Context | None = None) -> None:
        """A ``ctl.say`` chunk (``trace``: its message's trace context)."""
        await self.push_frame(SayFrame(say=say, received_at=time.monotonic(), trace=trace))

    async def mark(self, mark: PlaybackMark) -> None:
        """A playback mark from ``audio.played``."""
        await self.push_frame(PlaybackMarkFrame(mark=mark))


class CallerEvents(FrameProcessor):
    """Publishes the caller's speech events and transcripts, and media errors.

    The pipeline's last processor: transcripts reach it after the output has
    judged them (an interruption's event goes first; a backchannel is marked).

    Args:
        outlet: where events go.
        events: builds the call's events.
        on_transcript: also told every transcript's text (answering-machine detection).
    """

    def __init__(
        self,
        outlet: CallOutlet,
        events: CallEvents,
        on_transcript: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(enable_direct_mode=True)
        self._outlet = outlet
        self._events = events
        self._on_transcript = on_transcript

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Emit the event a frame stands for; forward every frame but transcripts and errors."""
        await super().process_frame(frame, direction)
        if isinstance(frame, UserSpeechStartedFrame):
            if frame.new_turn:
                self._outlet.emit(self._events.speech_started(frame.at_ms))
        elif isinstance(frame, UserTurnEndedFrame):
            with within(frame.trace):
                self._outlet.emit(self._events.speech_stopped(frame.start_ms, frame.end_ms))
        elif isinstance(frame, TranscriptFrame):
            if frame.text:
                with within(frame.trace):
                    self._outlet.emit(self._events.transcript(_transcript(frame)))
                if self._on_transcript is not None:
                    self._on_transcript(frame.text)
            return
        elif isinstance(frame, TranscriptInterimFrame):
            self._outlet.emit(self._events.partial(frame.utterance_id, frame.text))
            return
        elif isinstance(frame, MediaErrorFrame):
            self._outlet.emit(
                self._events.error(frame.code, frame.message, retryable=frame.retryable)
            )
            return
        await self.push_frame(frame, direction)


def _transcript(frame: TranscriptFrame) -> TranscriptFinalData:
    return TranscriptFinalData(
        utterance_id=frame.utterance_id,
        text=strip_control(frame.text[:8192]),  # an STT engine's output is outside text
        language=frame.language,
        confidence=frame.confidence,
        start_ms=frame.start_ms,
        end_ms=frame.end_ms,
        stt_latency_ms=frame.latency_ms,
        engine=frame.engine,
        backchannel=frame.backchannel,
    )
