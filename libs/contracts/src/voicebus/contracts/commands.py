"""Commands: orders with exactly one owner.

``OriginateCall`` travels on the JetStream work queue ``VB_COMMANDS``
(``vb.cmd.call.originate``), so exactly one gateway dials. The others act on
one live call and travel on core NATS (``vb.ctl.<call>.<verb>``): they are
only meaningful while the call is up, so storing them would replay stale
orders.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Final, Literal

from pydantic import Field, TypeAdapter

from voicebus.contracts import subjects
from voicebus.contracts.events._base import Data, Envelope
from voicebus.contracts.events.call import EndReason


class Command(Envelope):
    """Base of every command: the event envelope, addressed to an owner."""

    @property
    def subject(self) -> str:
        """Where the command is published."""
        raise NotImplementedError


class ControlCommand(Command):
    """A command within one live call, on ``vb.ctl.<call>.<verb>``."""

    verb: ClassVar[subjects.CtlVerb]

    @property
    def subject(self) -> str:
        """``vb.ctl.<call>.<verb>``."""
        return subjects.ctl(self.call_id, self.verb)


class OriginateCallData(Data):
    """Data of ``call.originate.v1``."""

    agent_id: str = Field(
        min_length=1, max_length=128, description="Agent that will talk.", examples=["demo"]
    )
    to_number: str = Field(
        min_length=2,
        max_length=32,
        pattern=r"^\+[1-9][0-9]{1,14}$",
        description="Number to dial, E.164. Personal data.",
        examples=["+14155550199"],
    )
    from_number: str | None = Field(
        default=None,
        max_length=32,
        pattern=r"^\+[1-9][0-9]{1,14}$",
        description="Caller id to present, E.164.",
        examples=["+14155550100"],
    )
    provider: str | None = Field(
        default=None,
        max_length=32,
        description="Provider to dial through; the tenant's default when null.",
        examples=["twilio"],
    )
    context: dict[str, str] = Field(
        default_factory=dict,
        description="Variables for the agent's prompt and greeting.",
        examples=[{"customer_name": "Ada"}],
    )
    detect_machine: bool = Field(
        default=False,
        description="Ask the provider for answering-machine detection.",
        examples=[True],
    )
    ring_timeout_s: int = Field(
        default=30, ge=5, le=120, description="Give up after ringing.", examples=[30]
    )
    campaign_id: str | None = Field(
        default=None,
        max_length=64,
        description="Campaign that placed the call, if any.",
        examples=["cmp-42"],
    )
    attempt_id: str | None = Field(
        default=None, max_length=64, description="Campaign attempt id, if any.", examples=["att-7"]
    )


class OriginateCall(Command):
    """Dial a number and connect the answered call to an agent."""

    type: Literal["call.originate.v1"] = "call.originate.v1"
    data: OriginateCallData

    @property
    def subject(self) -> str:
        """``vb.cmd.call.originate``."""
        return subjects.cmd("call", "originate")


class HangUpData(Data):
    """Data of ``call.hangup.v1``."""

    reason: EndReason = Field(
        default=EndReason.AGENT_HANGUP, description="Why.", examples=["agent_hangup"]
    )
    after_playback: bool = Field(
        default=True,
        description="Wait until audio already sent has played (e.g. the goodbye).",
        examples=[True],
    )


class HangUp(ControlCommand):
    """End the call."""

    verb = subjects.CtlVerb.HANGUP
    type: Literal["call.hangup.v1"] = "call.hangup.v1"
    data: HangUpData = Field(default_factory=HangUpData)


class SayData(Data):
    """Data of ``say.v1``: one sentence-sized chunk of an agent utterance."""

    utterance_id: str = Field(
        min_length=1,
        max_length=64,
        description="Utterance this chunk belongs to.",
        examples=["a-0193a5f3"],
    )
    seq: int = Field(ge=0, description="Chunk number within the utterance, from 0.", examples=[0])
    text: str = Field(
        max_length=4096,
        description="Text to speak (may be empty when final).",
        examples=["Your order 1234 shipped yesterday."],
    )
    final: bool = Field(default=False, description="Last chunk of the utterance.", examples=[False])
    allow_interruptions: bool = Field(
        default=True, description="Whether caller speech may cut it (barge-in).", examples=[True]
    )
    agent_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description=(
            "The agent speaking, whose voice (TTS engine and options) media uses: after a "
            "handoff another agent of the tenant than the one the call started with. Null: "
            "the call's agent."
        ),
        examples=["billing"],
    )


class Say(ControlCommand):
    """Speak a chunk of text to the caller."""

    verb = subjects.CtlVerb.SAY
    type: Literal["say.v1"] = "say.v1"
    data: SayData


class ClearData(Data):
    """Data of ``clear.v1``."""

    utterance_id: str | None = Field(
        default=None,
        max_length=64,
        description="Utterance being cut, if known.",
        examples=["a-0193a5f3"],
    )
    reason: Literal["barge_in", "cancelled", "hangup"] = Field(
        default="barge_in", description="Why the audio is flushed.", examples=["barge_in"]
    )


class Clear(ControlCommand):
    """Flush agent audio not yet played (gateway → provider ``clear``)."""

    verb = subjects.CtlVerb.CLEAR
    type: Literal["clear.v1"] = "clear.v1"
    data: ClearData = Field(default_factory=ClearData)


class TransferMode(StrEnum):
    """How a transfer connects the caller."""

    COLD = "cold"
    WARM = "warm"


class TransferData(Data):
    """Data of ``transfer.v1``."""

    to_number: str = Field(
        min_length=2,
        max_length=32,
        pattern=r"^\+[1-9][0-9]{1,14}$",
        description="Where to transfer, E.164. Personal data.",
        examples=["+14155550123"],
    )
    mode: TransferMode = Field(
        default=TransferMode.COLD,
        description="Cold: connect at once. Warm: brief the target first.",
        examples=["cold"],
    )
    announcement: str | None = Field(
        default=None,
        max_length=2048,
        description="Warm transfer: what to tell the target.",
        examples=["Caller asks about order 1234."],
    )


class Transfer(ControlCommand):
    """Transfer the caller to a number."""

    verb = subjects.CtlVerb.TRANSFER
    type: Literal["transfer.v1"] = "transfer.v1"
    data: TransferData


class SendDtmfData(Data):
    """Data of ``send_dtmf.v1``."""

    digits: str = Field(
        pattern=r"^[0-9*#A-Dw]{1,64}$",
        description="Keys to press ('w' waits 0.5 s).",
        examples=["1w2"],
    )


class SendDtmf(ControlCommand):
    """Send keypad tones into the call (e.g. to navigate an IVR)."""

    verb = subjects.CtlVerb.DTMF
    type: Literal["send_dtmf.v1"] = "send_dtmf.v1"
    data: SendDtmfData


class MaskKeypadData(Data):
    """Data of ``mask_keypad.v1``."""

    masked: bool = Field(
        description="True: from now on the gateway stores each key of dtmf.received as '*' "
        "(masked: true) and hands the real keys to the call's orchestrator only, on "
        "vb.keys.<call>; false: back to keys as pressed.",
        examples=[True],
    )


class MaskKeypad(ControlCommand):
    """Mask or unmask the caller's keys in the call's events (a sensitive collect-digits
    node: a PIN, a card number)."""

    verb = subjects.CtlVerb.KEYPAD
    type: Literal["mask_keypad.v1"] = "mask_keypad.v1"
    data: MaskKeypadData


AnyControlCommand = Annotated[
    HangUp | Say | Clear | Transfer | SendDtmf | MaskKeypad, Field(discriminator="type")
]
"""Any command on ``vb.ctl.<call>.*``."""

CONTROL_COMMAND: Final[TypeAdapter[AnyControlCommand]] = TypeAdapter(AnyControlCommand)

COMMAND_CLASSES: Final[tuple[type[Command], ...]] = (
    OriginateCall,
    HangUp,
    Say,
    Clear,
    Transfer,
    SendDtmf,
    MaskKeypad,
)


def parse_control(raw: bytes | str) -> AnyControlCommand:
    """Parse any per-call control command from JSON.

    Raises:
        pydantic.ValidationError: naming the missing or invalid field.
    """
    return CONTROL_COMMAND.validate_json(raw)
