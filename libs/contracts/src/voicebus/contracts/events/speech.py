"""What the caller says: voice activity and transcripts (produced by media)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope

_OFFSET = "Milliseconds since call.started, on the caller's audio timeline."


class SpeechUserStartedData(Data):
    """Data of ``speech.user.started.v1``."""

    at_ms: int = Field(ge=0, description=_OFFSET, examples=[5120])


class SpeechUserStarted(Envelope):
    """Voice activity detection heard the caller start speaking."""

    type: Literal["speech.user.started.v1"] = "speech.user.started.v1"
    data: SpeechUserStartedData


class SpeechUserStoppedData(Data):
    """Data of ``speech.user.stopped.v1``."""

    at_ms: int = Field(ge=0, description=_OFFSET, examples=[7480])
    duration_ms: int = Field(ge=0, description="Length of the speech segment.", examples=[2360])


class SpeechUserStopped(Envelope):
    """The caller stopped speaking and the turn detector ended their turn."""

    type: Literal["speech.user.stopped.v1"] = "speech.user.stopped.v1"
    data: SpeechUserStoppedData


class TranscriptPartialData(Data):
    """Data of ``transcript.partial.v1``."""

    utterance_id: str = Field(
        min_length=1,
        max_length=64,
        description="Groups partials and the final of one utterance.",
        examples=["u-0193a5f2"],
    )
    text: str = Field(
        max_length=8192,
        description="Interim text; may change. Personal data.",
        examples=["where is my"],
    )


class TranscriptPartial(Envelope):
    """Interim speech-to-text result (engines that stream only)."""

    type: Literal["transcript.partial.v1"] = "transcript.partial.v1"
    data: TranscriptPartialData


class TranscriptFinalData(Data):
    """Data of ``transcript.final.v1``."""

    utterance_id: str = Field(
        min_length=1, max_length=64, description="Id of the utterance.", examples=["u-0193a5f2"]
    )
    text: str = Field(
        max_length=8192,
        description="What the caller said. Personal data.",
        examples=["Hi, where is my order 1234?"],
    )
    language: str | None = Field(
        default=None, max_length=16, description="BCP 47 language code.", examples=["en"]
    )
    confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Engine confidence, if it reports one.",
        examples=[0.93],
    )
    start_ms: int = Field(ge=0, description=_OFFSET + " Start of the utterance.", examples=[5120])
    end_ms: int = Field(ge=0, description=_OFFSET + " End of the utterance.", examples=[7480])
    stt_latency_ms: float | None = Field(
        default=None, ge=0, description="End of speech to this transcript.", examples=[310.5]
    )
    engine: str | None = Field(
        default=None, max_length=64, description="STT engine used.", examples=["whisper-local"]
    )
    backchannel: bool = Field(
        default=False,
        description='Said over the agent without taking the turn: a backchannel ("mhm", '
        '"okay") or too little to interrupt. The agent went on; it is not a turn of the '
        "conversation.",
        examples=[False],
    )


class TranscriptFinal(Envelope):
    """Final text of one caller utterance."""

    type: Literal["transcript.final.v1"] = "transcript.final.v1"
    data: TranscriptFinalData
