"""Facts about the call's media: keypad digits, answering machines, recordings."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope


class DtmfReceivedData(Data):
    """Data of ``dtmf.received.v1``."""

    digits: str = Field(
        pattern=r"^[0-9*#A-Da-dw]{1,64}$",
        description="Keys the caller pressed. Personal data (may be a PIN).",
        examples=["1"],
    )
    masked: bool = Field(
        default=False,
        description="The keys are shown as one '*' each: the call was in a node collecting "
        "sensitive input, and the keys went to the call's orchestrator only (vb.keys.<call>).",
        examples=[False],
    )


class DtmfReceived(Envelope):
    """The caller pressed keypad keys."""

    type: Literal["dtmf.received.v1"] = "dtmf.received.v1"
    data: DtmfReceivedData


class AmdResult(StrEnum):
    """Answering-machine detection outcome."""

    HUMAN = "human"
    MACHINE = "machine"
    MACHINE_END_BEEP = "machine_end_beep"
    FAX = "fax"
    UNKNOWN = "unknown"


class AmdMethod(StrEnum):
    """What an answering-machine decision rests on."""

    PROVIDER = "provider"
    BEEP = "beep"
    GREETING = "greeting"
    CADENCE = "cadence"
    TRANSCRIPT = "transcript"
    SILENCE = "silence"


AMD_CONTEXT_KEY: Final = "amd"
"""Call-context variable set on an outbound call placed with answering-machine detection:
media runs its own detector on such calls."""


class AmdDetectedData(Data):
    """Data of ``amd.detected.v1``."""

    result: AmdResult = Field(description="Who answered.", examples=["machine"])
    detector: Literal["provider", "media"] = Field(
        description="The provider's AMD or voicebus media's own.", examples=["provider"]
    )
    confidence: float | None = Field(
        default=None, ge=0, le=1, description="Detector confidence, if any.", examples=[0.9]
    )
    detection_ms: int | None = Field(
        default=None, ge=0, description="Time from answer to decision.", examples=[2800]
    )
    method: AmdMethod | None = Field(
        default=None,
        description="What the decision rests on (media's detector): a beep, the greeting's "
        "length, its cadence, its words, or silence after it.",
        examples=["greeting"],
    )


class AmdDetected(Envelope):
    """Answering-machine detection decided who picked up."""

    type: Literal["amd.detected.v1"] = "amd.detected.v1"
    data: AmdDetectedData


class RecordingReadyData(Data):
    """Data of ``recording.ready.v1``."""

    recording_id: str = Field(
        min_length=1,
        max_length=64,
        description="Recording id.",
        examples=["0193a5f9-0000-7000-8000-000000000001"],
    )
    uri: str = Field(
        min_length=1,
        max_length=2048,
        description="Where it is stored: a file path or an object-store URI.",
        examples=["file:recordings/acme/0193a5f2.wav"],
    )
    format: Literal["wav"] = Field(default="wav", description="Container.", examples=["wav"])
    channels: Literal[2] = Field(
        default=2, description="Stereo: caller on the left, agent on the right.", examples=[2]
    )
    sample_rate: int = Field(gt=0, description="Samples per second.", examples=[8000])
    duration_s: float = Field(ge=0, description="Length.", examples=[42.38])
    bytes: int = Field(ge=0, description="File size.", examples=[1356204])
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the file.",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )
    redacted: bool = Field(
        default=False,
        description="The caller's channel is silent wherever the call was in a node "
        "collecting sensitive keypad input (see flow.node_entered's sensitive_input).",
        examples=[True],
    )


class RecordingReady(Envelope):
    """The call's stereo recording is finalized and stored."""

    type: Literal["recording.ready.v1"] = "recording.ready.v1"
    data: RecordingReadyData
