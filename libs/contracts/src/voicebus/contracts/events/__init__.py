"""Every v1 call event, and one adapter that parses any of them.

>>> event = parse_event(raw_bytes)          # doctest: +SKIP
>>> match event:                             # doctest: +SKIP
...     case CallStarted(): ...
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, TypeAdapter

from voicebus.contracts.events._base import Data, Envelope, utc_now
from voicebus.contracts.events.agent import (
    AgentReply,
    AgentReplyData,
    AgentSpeechInterrupted,
    AgentSpeechInterruptedData,
    AgentSpeechStarted,
    AgentSpeechStartedData,
    AgentSpeechStopped,
    AgentSpeechStoppedData,
    FlowNodeEntered,
    FlowNodeEnteredData,
    ToolCalled,
    ToolCalledData,
    ToolResult,
    ToolResultData,
)
from voicebus.contracts.events.analysis import (
    CallAnalyzed,
    CallAnalyzedData,
    SuccessEvaluation,
)
from voicebus.contracts.events.call import (
    AudioEncoding,
    AudioFormat,
    CallEnded,
    CallEndedData,
    CallError,
    CallErrorData,
    CallInitiated,
    CallInitiatedData,
    CallRinging,
    CallRingingData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    ErrorCode,
)
from voicebus.contracts.events.campaign import (
    AttemptDialed,
    AttemptDialedData,
    AttemptOutcome,
    AttemptOutcomeData,
    AttemptOutcomeRecorded,
    AttemptScheduled,
    AttemptScheduledData,
    CampaignProgress,
    CampaignProgressData,
    DncChecked,
    DncCheckedData,
    DncRequested,
    DncRequestedData,
    NotificationDelivered,
    NotificationDeliveredData,
    WindowChecked,
    WindowCheckedData,
)
from voicebus.contracts.events.engine import (
    EngineErrorData,
    EngineErrorOccurred,
    EngineFailover,
    EngineFailoverData,
    EngineRole,
)
from voicebus.contracts.events.flow import (
    AgentHandoff,
    AgentHandoffData,
    AgentUpdated,
    AgentUpdatedData,
    CallIdle,
    CallIdleData,
    FlowTransition,
    FlowTransitionData,
)
from voicebus.contracts.events.knowledge import KbRetrieved, KbRetrievedData, RetrievedChunk
from voicebus.contracts.events.media import (
    AMD_CONTEXT_KEY,
    AmdDetected,
    AmdDetectedData,
    AmdMethod,
    AmdResult,
    DtmfReceived,
    DtmfReceivedData,
    RecordingReady,
    RecordingReadyData,
)
from voicebus.contracts.events.privacy import CallerErased, CallerErasedData
from voicebus.contracts.events.speech import (
    SpeechUserStarted,
    SpeechUserStartedData,
    SpeechUserStopped,
    SpeechUserStoppedData,
    TranscriptFinal,
    TranscriptFinalData,
    TranscriptPartial,
    TranscriptPartialData,
)
from voicebus.contracts.events.supervision import (
    SupervisionEnded,
    SupervisionEndedData,
    SupervisionHandedBack,
    SupervisionHandedBackData,
    SupervisionHumanSaid,
    SupervisionHumanSaidData,
    SupervisionStarted,
    SupervisionStartedData,
    SupervisionTakenOver,
    SupervisionTakenOverData,
    SupervisionWhispered,
    SupervisionWhisperedData,
)
from voicebus.contracts.text import CLEAN_JSON, json_may_hold_control

CallEvent = Annotated[
    CallInitiated
    | CallRinging
    | CallStarted
    | CallEnded
    | CallError
    | SpeechUserStarted
    | SpeechUserStopped
    | TranscriptPartial
    | TranscriptFinal
    | AgentReply
    | AgentSpeechStarted
    | AgentSpeechStopped
    | AgentSpeechInterrupted
    | ToolCalled
    | ToolResult
    | FlowNodeEntered
    | FlowTransition
    | AgentHandoff
    | CallIdle
    | AgentUpdated
    | DtmfReceived
    | AmdDetected
    | RecordingReady
    | DncChecked
    | WindowChecked
    | AttemptScheduled
    | AttemptDialed
    | AttemptOutcomeRecorded
    | CampaignProgress
    | NotificationDelivered
    | DncRequested
    | EngineErrorOccurred
    | EngineFailover
    | CallAnalyzed
    | CallerErased
    | KbRetrieved
    | SupervisionStarted
    | SupervisionWhispered
    | SupervisionTakenOver
    | SupervisionHumanSaid
    | SupervisionHandedBack
    | SupervisionEnded,
    Field(discriminator="type"),
]
"""Any event of the ``VB_EVENTS`` stream, told apart by its ``type``."""

CALL_EVENT: Final[TypeAdapter[CallEvent]] = TypeAdapter(CallEvent)
_CLEAN: Final = {CLEAN_JSON: True}
"""The one adapter every consumer uses to parse an event."""

EVENT_CLASSES: Final[tuple[type[Envelope], ...]] = (
    CallInitiated,
    CallRinging,
    CallStarted,
    CallEnded,
    CallError,
    SpeechUserStarted,
    SpeechUserStopped,
    TranscriptPartial,
    TranscriptFinal,
    AgentReply,
    AgentSpeechStarted,
    AgentSpeechStopped,
    AgentSpeechInterrupted,
    ToolCalled,
    ToolResult,
    FlowNodeEntered,
    FlowTransition,
    AgentHandoff,
    CallIdle,
    AgentUpdated,
    DtmfReceived,
    AmdDetected,
    RecordingReady,
    DncChecked,
    WindowChecked,
    AttemptScheduled,
    AttemptDialed,
    AttemptOutcomeRecorded,
    CampaignProgress,
    NotificationDelivered,
    DncRequested,
    EngineErrorOccurred,
    EngineFailover,
    CallAnalyzed,
    CallerErased,
    KbRetrieved,
    SupervisionStarted,
    SupervisionWhispered,
    SupervisionTakenOver,
    SupervisionHumanSaid,
    SupervisionHandedBack,
    SupervisionEnded,
)
"""Every event class, in the order of a call's life (used to build the AsyncAPI document)."""


def parse_event(raw: bytes | str | dict[str, object]) -> CallEvent:
    """Parse any call event from JSON bytes, a JSON string or a dict.

    Raises:
        pydantic.ValidationError: unknown ``type``, a missing or invalid field;
            the error names the field.
    """
    if isinstance(raw, dict):
        return CALL_EVENT.validate_python(raw)
    if json_may_hold_control(raw):
        return CALL_EVENT.validate_json(raw)
    # Audit parses thousands of events a second: skip the per-model search when the
    # JSON itself shows that no string can hold a control character.
    return CALL_EVENT.validate_json(raw, context=_CLEAN)


__all__ = [
    "AMD_CONTEXT_KEY",
    "CALL_EVENT",
    "EVENT_CLASSES",
    "AgentHandoff",
    "AgentHandoffData",
    "AgentReply",
    "AgentReplyData",
    "AgentSpeechInterrupted",
    "AgentSpeechInterruptedData",
    "AgentSpeechStarted",
    "AgentSpeechStartedData",
    "AgentSpeechStopped",
    "AgentSpeechStoppedData",
    "AgentUpdated",
    "AgentUpdatedData",
    "AmdDetected",
    "AmdDetectedData",
    "AmdMethod",
    "AmdResult",
    "AttemptDialed",
    "AttemptDialedData",
    "AttemptOutcome",
    "AttemptOutcomeData",
    "AttemptOutcomeRecorded",
    "AttemptScheduled",
    "AttemptScheduledData",
    "AudioEncoding",
    "AudioFormat",
    "CallAnalyzed",
    "CallAnalyzedData",
    "CallEnded",
    "CallEndedData",
    "CallError",
    "CallErrorData",
    "CallEvent",
    "CallIdle",
    "CallIdleData",
    "CallInitiated",
    "CallInitiatedData",
    "CallRinging",
    "CallRingingData",
    "CallStarted",
    "CallStartedData",
    "CallerErased",
    "CallerErasedData",
    "CampaignProgress",
    "CampaignProgressData",
    "Data",
    "Direction",
    "DncChecked",
    "DncCheckedData",
    "DncRequested",
    "DncRequestedData",
    "DtmfReceived",
    "DtmfReceivedData",
    "EndReason",
    "EngineErrorData",
    "EngineErrorOccurred",
    "EngineFailover",
    "EngineFailoverData",
    "EngineRole",
    "Envelope",
    "ErrorCode",
    "FlowNodeEntered",
    "FlowNodeEnteredData",
    "FlowTransition",
    "FlowTransitionData",
    "KbRetrieved",
    "KbRetrievedData",
    "NotificationDelivered",
    "NotificationDeliveredData",
    "RecordingReady",
    "RecordingReadyData",
    "RetrievedChunk",
    "SpeechUserStarted",
    "SpeechUserStartedData",
    "SpeechUserStopped",
    "SpeechUserStoppedData",
    "SuccessEvaluation",
    "SupervisionEnded",
    "SupervisionEndedData",
    "SupervisionHandedBack",
    "SupervisionHandedBackData",
    "SupervisionHumanSaid",
    "SupervisionHumanSaidData",
    "SupervisionStarted",
    "SupervisionStartedData",
    "SupervisionTakenOver",
    "SupervisionTakenOverData",
    "SupervisionWhispered",
    "SupervisionWhisperedData",
    "ToolCalled",
    "ToolCalledData",
    "ToolResult",
    "ToolResultData",
    "TranscriptFinal",
    "TranscriptFinalData",
    "TranscriptPartial",
    "TranscriptPartialData",
    "WindowChecked",
    "WindowCheckedData",
    "parse_event",
    "utc_now",
]
