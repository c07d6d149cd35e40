"""Answering-machine detection on the audio path of an outbound call.

Sits after the VAD, before the turn processor: it sees every caller frame and
the VAD's transitions, feeds :class:`~voicebus.media.amd.MachineDetector`, and
publishes each decision as ``amd.detected`` (detector ``media``, with method
and confidence). Once the detector has nothing more to decide it only passes
frames on. Transcripts reach it through :meth:`AmdWatch.heard`, called by the
caller-events processor.
"""

from __future__ import annotations

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from voicebus.media.amd import AmdDecision, MachineDetector
from voicebus.media.barge_in import Floor
from voicebus.media.events import CallEvents
from voicebus.media.frames import CallerAudioFrame
from voicebus.media.metrics import AMD_DECISIONS
from voicebus.media.outlet import CallOutlet
from voicebus.media.pacing import audio_ms


class AmdWatch(FrameProcessor):
    """Runs the call's machine detector and reports its decisions.

    Args:
        detector: the call's detector.
        vad_start_ms: speech the VAD needs to report a start.
        vad_stop_ms: silence the VAD needs to report a stop.
        outlet: where events go.
        events: builds the call's events.
        floor: the call's floor state: ``screening`` while no decision is made, so the
            callee's turns reach the STT (and the detector) at each VAD stop.
    """

    def __init__(
        self,
        detector: MachineDetector,
        vad_start_ms: int,
        vad_stop_ms: int,
        outlet: CallOutlet,
        events: CallEvents,
        floor: Floor,
    ) -> None:
        super().__init__(enable_direct_mode=True)
        self._detector = detector
        self._floor = floor
        floor.screening = True
        self._start_ms = vad_start_ms
        self._stop_ms = vad_stop_ms
        self._outlet = outlet
        self._events = events
        self._end_ms = 0.0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Feed the detector; forward every frame."""
        await super().process_frame(frame, direction)
        if not self._detector.finished:
            if isinstance(frame, InputAudioRawFrame):
                if isinstance(frame, CallerAudioFrame):
                    self._end_ms = frame.ts_ms
                self._end_ms += audio_ms(len(frame.audio), frame.sample_rate)
                self._report(self._detector.audio(frame.audio, round(self._end_ms)))
            elif isinstance(frame, VADUserStartedSpeakingFrame):
                self._detector.speech_started(self._start_ms)
            elif isinstance(frame, VADUserStoppedSpeakingFrame):
                self._detector.speech_stopped(self._stop_ms)
        await self.push_frame(frame, direction)

    def heard(self, text: str) -> None:
        """A transcript of the callee."""
        if not self._detector.finished:
            self._report(self._detector.transcript(text))

    def _report(self, decisions: list[AmdDecision]) -> None:
        self._floor.screening = self._detector.decision is None
        for decision in decisions:
            AMD_DECISIONS.labels(decision.result.value, decision.method.value).inc()
            self._outlet.emit(self._events.amd(decision))
