"""Call lifecycle events: initiated, ringing, started, ended, error."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope


class Direction(StrEnum):
    """Who placed the call."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AudioEncoding(StrEnum):
    """Encoding of audio frames on the bus (always PCM; providers' codecs end at the gateway)."""

    PCM16LE = "pcm16le"


class AudioFormat(Data):
    """Format of the call's audio on ``vb.audio.<call>.in|out``."""

    encoding: AudioEncoding = Field(
        default=AudioEncoding.PCM16LE,
        description="Sample encoding on the bus.",
        examples=["pcm16le"],
    )
    sample_rate: Literal[8000, 16000, 24000, 48000] = Field(
        default=8000, description="Samples per second.", examples=[8000]
    )
    channels: Literal[1] = Field(default=1, description="Always mono.", examples=[1])
    frame_ms: int = Field(
        default=20, ge=10, le=200, description="Duration of one frame.", examples=[20]
    )


class CallParties(Data):
    """Fields shared by the events that open a call."""

    direction: Direction = Field(description="Inbound or outbound.", examples=["inbound"])
    provider: str = Field(
        min_length=1,
        max_length=32,
        description="Telephony provider that carries the call.",
        examples=["twilio"],
    )
    provider_call_id: str | None = Field(
        default=None,
        max_length=128,
        description="The provider's id for the call (Twilio CallSid, Plivo CallUUID, ...).",
        examples=["CA0123456789abcdef0123456789abcdef"],
    )
    agent_id: str = Field(
        min_length=1, max_length=128, description="Agent answering the call.", examples=["demo"]
    )
    agent_version: int | None = Field(
        default=None,
        ge=1,
        description=(
            "The agent version the call runs, pinned when the call was asked for (a replay "
            "against a version not yet live). Null: the live version."
        ),
        examples=[3],
    )
    from_number: str | None = Field(
        default=None,
        max_length=64,
        description="Caller number, E.164 where known. Personal data.",
        examples=["+14155550100"],
    )
    to_number: str | None = Field(
        default=None,
        max_length=64,
        description="Called number, E.164 where known. Personal data.",
        examples=["+14155550199"],
    )
    context: dict[str, str] = Field(
        default_factory=dict,
        description="Call context variables; they reach the agent's prompt and greeting.",
        examples=[{"customer_name": "Ada", "order_id": "1234"}],
    )


class CallInitiatedData(CallParties):
    """Data of ``call.initiated.v1``."""


class CallInitiated(Envelope):
    """The platform accepted an inbound webhook or started dialing an outbound call."""

    type: Literal["call.initiated.v1"] = "call.initiated.v1"
    data: CallInitiatedData


class CallRingingData(Data):
    """Data of ``call.ringing.v1``."""

    provider_call_id: str | None = Field(
        default=None,
        max_length=128,
        description="The provider's id for the call.",
        examples=["CA0123456789abcdef0123456789abcdef"],
    )


class CallRinging(Envelope):
    """The callee's phone is ringing (outbound calls)."""

    type: Literal["call.ringing.v1"] = "call.ringing.v1"
    data: CallRingingData


class CallStartedData(CallParties):
    """Data of ``call.started.v1``."""

    stream_id: str | None = Field(
        default=None,
        max_length=128,
        description="The provider's media stream id (Twilio streamSid, ...).",
        examples=["MZ0123456789abcdef0123456789abcdef"],
    )
    audio: AudioFormat = Field(
        default_factory=AudioFormat, description="Audio format of the call's frames on the bus."
    )
    gateway_instance: str = Field(
        min_length=1,
        max_length=128,
        description="Gateway instance holding the media WebSocket.",
        examples=["gw-7f9c"],
    )


class CallStarted(Envelope):
    """Media flows: the provider opened the media stream and the agent can speak."""

    type: Literal["call.started.v1"] = "call.started.v1"
    data: CallStartedData


class EndReason(StrEnum):
    """Why a call ended."""

    CALLER_HANGUP = "caller_hangup"
    AGENT_HANGUP = "agent_hangup"
    TRANSFERRED = "transferred"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELED = "canceled"
    MACHINE_DETECTED = "machine_detected"
    PROVIDER_ERROR = "provider_error"
    GATEWAY_LOST = "gateway_lost"
    TIMEOUT = "timeout"
    ERROR = "error"
    IDLE = "idle"
    MAX_DURATION = "max_duration"
    CONCURRENCY_LIMIT = "concurrency_limit"
    """Not dialed: the tenant's live calls were at its ``max_concurrent_calls``."""


class CallEndedData(Data):
    """Data of ``call.ended.v1``."""

    reason: EndReason = Field(description="Why the call ended.", examples=["caller_hangup"])
    duration_s: float | None = Field(
        default=None,
        ge=0,
        description="Seconds from call.started to the end; null if media never started.",
        examples=[42.38],
    )
    provider_error_code: str | None = Field(
        default=None,
        max_length=64,
        description="The provider's error code when reason is provider_error or failed.",
        examples=["21211"],
    )
    detail: str | None = Field(
        default=None,
        max_length=1024,
        description="Human-readable detail, no personal data.",
        examples=["caller hung up"],
    )


class CallEnded(Envelope):
    """The call is over. The last event of a call (recording.ready may follow)."""

    type: Literal["call.ended.v1"] = "call.ended.v1"
    data: CallEndedData


class ErrorCode(StrEnum):
    """What kind of error a ``call.error`` reports."""

    SIGNATURE_INVALID = "signature_invalid"
    UNKNOWN_AGENT = "unknown_agent"
    MEDIA_PROTOCOL = "media_protocol"
    PROVIDER_ERROR = "provider_error"
    ENGINE_ERROR = "engine_error"
    TOOL_ERROR = "tool_error"
    INVALID_CONTEXT = "invalid_context"
    INTERNAL = "internal"
    CONCURRENCY_LIMIT = "concurrency_limit"
    """The tenant's live calls were at its ``max_concurrent_calls``: the call was refused."""


class CallErrorData(Data):
    """Data of ``call.error.v1``."""

    code: ErrorCode = Field(description="Kind of error.", examples=["signature_invalid"])
    message: str = Field(
        max_length=2048,
        description="What went wrong, no personal data and no secrets.",
        examples=["X-Twilio-Signature does not match the request"],
    )
    security: bool = Field(
        default=False,
        description="True for security-relevant errors (bad signature, bad credentials).",
        examples=[True],
    )
    retryable: bool = Field(
        default=False, description="Whether retrying may succeed.", examples=[False]
    )
    service: str | None = Field(
        default=None,
        max_length=64,
        description="Service that hit the error.",
        examples=["gateway"],
    )


class CallError(Envelope):
    """Something went wrong for a call; the call may or may not go on."""

    type: Literal["call.error.v1"] = "call.error.v1"
    data: CallErrorData
