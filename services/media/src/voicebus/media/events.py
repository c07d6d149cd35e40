"""The events media publishes about one call, built with the call's identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from voicebus.contracts.events import (
    AgentSpeechInterrupted,
    AgentSpeechInterruptedData,
    AgentSpeechStarted,
    AgentSpeechStartedData,
    AgentSpeechStopped,
    AgentSpeechStoppedData,
    AmdDetected,
    AmdDetectedData,
    CallError,
    CallErrorData,
    EngineErrorData,
    EngineErrorOccurred,
    EngineFailover,
    EngineFailoverData,
    ErrorCode,
    SpeechUserStarted,
    SpeechUserStartedData,
    SpeechUserStopped,
    SpeechUserStoppedData,
    SupervisionHumanSaid,
    SupervisionHumanSaidData,
    TranscriptFinal,
    TranscriptFinalData,
    TranscriptPartial,
    TranscriptPartialData,
)
from voicebus.contracts.redaction import RedactionSettings, redact
from voicebus.engines.fallback.incidents import EngineFailure, Failover, Incident
from voicebus.media.amd import AmdDecision
from voicebus.media.playback import Finished, Interrupted, Started

SERVICE = "media"
MAX_TEXT = 16384
MAX_HUMAN_LINE = 2000
"""The longest ``supervision.human_said`` text the contract takes."""


def _clip(text: str) -> str:
    return text[:MAX_TEXT]


@dataclass(frozen=True, slots=True)
class CallEvents:
    """Builds this call's events.

    Attributes:
        tenant_id: the call's tenant.
        call_id: the call.
        source: ``media/<instance>``.
        redaction: what the agent's calls must not publish verbatim (its profile's).
    """

    tenant_id: str
    call_id: str
    source: str
    redaction: RedactionSettings | None = None

    def _text(self, text: str) -> str:
        return _clip(redact(text, self.redaction))

    def speech_started(self, at_ms: int) -> SpeechUserStarted:
        """``speech.user.started``."""
        return SpeechUserStarted(
            tenant_id=self.tenant_id,
            call_id=self.call_id,
            source=self.source,
            data=SpeechUserStartedData(at_ms=max(0, at_ms)),
        )

    def speech_stopped(self, start_ms: int, end_ms: int) -> SpeechUserStopped:
        """``speech.user.stopped``: the caller's turn ended."""
        data = SpeechUserStoppedData(at_ms=max(0, end_ms), duration_ms=max(0, end_ms - start_ms))
        return SpeechUserStopped(
            tenant_id=self.tenant_id, call_id=self.call_id, source=self.source, data=data
        )

    def transcript(self, data: TranscriptFinalData) -> TranscriptFinal:
        """``transcript.final``."""
        if self.redaction is not None and self.redaction.active:
            data = data.model_copy(update={"text": self._text(data.text)})
        return TranscriptFinal(
            tenant_id=self.tenant_id, call_id=self.call_id, source=self.source, data=data
        )

    def partial(self, utterance_id: str, text: str) -> TranscriptPartial:
        """``transcript.partial``."""
        text = redact(text, self.redaction)
        data = TranscriptPartialData(utterance_id=utterance_id, text=text[:8192])
        return TranscriptPartial(
            tenant_id=self.tenant_id, call_id=self.call_id, source=self.source, data=data
        )

    def engine(self, incident: Incident, agent_id: str) -> EngineErrorOccurred | EngineFailover:
        """``engine.error`` or ``engine.failover``."""
        if isinstance(incident, EngineFailure):
            return EngineErrorOccurred(
                tenant_id=self.tenant_id,
                call_id=self.call_id,
                source=self.source,
                data=EngineErrorData(
                    role=_role(incident.role),
                    engine=incident.engine[:64],
                    agent_id=agent_id,
                    kind=incident.kind[:32],
                    message=incident.message[:1024],
                    retryable=incident.retryable,
                    service=SERVICE,
                ),
            )
        assert isinstance(incident, Failover)
        return EngineFailover(
            tenant_id=self.tenant_id,
            call_id=self.call_id,
            source=self.source,
            data=EngineFailoverData(
                role=_role(incident.role),
                from_engine=incident.from_engine[:64],
                to_engine=incident.to_engine[:64],
                reason=incident.reason[:32],
                reissued=incident.reissued[:32],
                agent_id=agent_id,
                service=SERVICE,
            ),
        )

    def agent_started(self, started: Started) -> AgentSpeechStarted:
        """``agent.speech.started``."""
        data = AgentSpeechStartedData(
            utterance_id=started.utterance_id,
            text=self._text(started.text),
            first_audio_ms=started.first_audio_ms,
        )
        return AgentSpeechStarted(
            tenant_id=self.tenant_id, call_id=self.call_id, source=self.source, data=data
        )

    def agent_stopped(self, finished: Finished) -> AgentSpeechStopped:
        """``agent.speech.stopped``."""
        data = AgentSpeechStoppedData(
            utterance_id=finished.utterance_id,
            text=self._text(finished.text),
            played_ms=finished.played_ms,
        )
        return AgentSpeechStopped(
            tenant_id=self.tenant_id, call_id=self.call_id, source=self.source, data=data
        )

    def agent_interrupted(self, cut: Interrupted) -> AgentSpeechInterrupted:
        """``agent.speech.interrupted``."""
        data = AgentSpeechInterruptedData(
            utterance_id=cut.utterance_id,
            text_planned=self._text(cut.text_planned),
            text_heard=self._text(cut.text_heard),
            played_ms=cut.played_ms,
        )
        return AgentSpeechInterrupted(
            tenant_id=self.tenant_id, call_id=self.call_id, source=self.source, data=data
        )

    def amd(self, decision: AmdDecision) -> AmdDetected:
        """``amd.detected`` by media's own detector."""
        data = AmdDetectedData(
            result=decision.result,
            detector="media",
            confidence=decision.confidence,
            detection_ms=max(0, decision.at_ms),
            method=decision.method,
        )
        return AmdDetected(
            tenant_id=self.tenant_id, call_id=self.call_id, source=self.source, data=data
        )

    def human_said(self, operator: str, text: str) -> SupervisionHumanSaid:
        """``supervision.human_said``: a line the operator holding the call spoke."""
        line = redact(text, self.redaction)[:MAX_HUMAN_LINE]
        data = SupervisionHumanSaidData(operator=operator, text=line, via="speech")
        return SupervisionHumanSaid(
            tenant_id=self.tenant_id, call_id=self.call_id, source=self.source, data=data
        )

    def error(self, code: ErrorCode, message: str, *, retryable: bool = False) -> CallError:
        """``call.error`` reported by media."""
        data = CallErrorData(
            code=code, message=message[:2048], retryable=retryable, service=SERVICE
        )
        return CallError(
            tenant_id=self.tenant_id, call_id=self.call_id, source=self.source, data=data
        )


def _role(role: str) -> Literal["stt", "tts", "llm"]:
    if role == "stt":
        return "stt"
    if role == "tts":
        return "tts"
    return "llm"
