"""Live supervision of a call by a person: listen, whisper, take over, hand back.

The edge publishes these facts for the operator it authenticated (a console session or
an API key of the call's tenant); the orchestrator owning the call reacts to them in
order with the call's other events: a whisper becomes guidance in the LLM's context,
a take-over stops the agent until the hand-back, and the human agent's lines join the
history. Operator audio itself rides on ``vb.audio.<call>.out``, as the agent's does,
so taking over works on every provider; media transcribes it while the call is taken
over and publishes each spoken line as ``supervision.human_said`` (``via="speech"``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope

_OPERATOR = Field(
    min_length=1,
    max_length=64,
    pattern=r"^[A-Za-z0-9_-]+$",
    description="Who acted: the API key id behind the console session or request.",
    examples=["3f9a2c7b1d04"],
)


class SupervisionStartedData(Data):
    """Data of ``supervision.started.v1``."""

    operator: str = _OPERATOR
    mode: Literal["listen"] = Field(
        default="listen",
        description="What the operator opened: listening to both sides, mixed.",
        examples=["listen"],
    )


class SupervisionStarted(Envelope):
    """An operator started listening to the live call."""

    type: Literal["supervision.started.v1"] = "supervision.started.v1"
    data: SupervisionStartedData


class SupervisionWhisperedData(Data):
    """Data of ``supervision.whispered.v1``."""

    operator: str = _OPERATOR
    note: str = Field(
        min_length=1,
        max_length=1000,
        description=(
            "Guidance the agent's LLM receives for its next replies; never spoken to the "
            "caller. May hold personal data."
        ),
        examples=["Offer the 10% loyalty discount."],
    )


class SupervisionWhispered(Envelope):
    """An operator whispered a note to the agent."""

    type: Literal["supervision.whispered.v1"] = "supervision.whispered.v1"
    data: SupervisionWhisperedData


class SupervisionTakenOverData(Data):
    """Data of ``supervision.taken_over.v1``."""

    operator: str = _OPERATOR
    utterance_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Utterance id the operator's audio carries on vb.audio.<call>.out.",
        examples=["op-0193a5f3"],
    )


class SupervisionTakenOver(Envelope):
    """An operator took the call over: the agent stops, the operator's microphone speaks."""

    type: Literal["supervision.taken_over.v1"] = "supervision.taken_over.v1"
    data: SupervisionTakenOverData


class SupervisionHumanSaidData(Data):
    """Data of ``supervision.human_said.v1``."""

    operator: str = _OPERATOR
    text: str = Field(
        min_length=1,
        max_length=2000,
        description="A line the human agent said to the caller. Personal data.",
        examples=["I've applied the discount to your account."],
    )
    via: Literal["typed", "speech"] = Field(
        default="typed",
        description=(
            "How the line was captured: typed by the operator in the console, or their "
            "microphone's speech while holding the call, transcribed by media with the "
            "call's STT (absent in older events: typed)."
        ),
        examples=["speech"],
    )


class SupervisionHumanSaid(Envelope):
    """The human agent said a line while in control (typed, or spoken and transcribed);
    the agent keeps it in its history."""

    type: Literal["supervision.human_said.v1"] = "supervision.human_said.v1"
    data: SupervisionHumanSaidData


class SupervisionHandedBackData(Data):
    """Data of ``supervision.handed_back.v1``."""

    operator: str = _OPERATOR


class SupervisionHandedBack(Envelope):
    """The operator handed the call back: the agent answers again, with the human's lines
    in its history."""

    type: Literal["supervision.handed_back.v1"] = "supervision.handed_back.v1"
    data: SupervisionHandedBackData


class SupervisionEndedData(Data):
    """Data of ``supervision.ended.v1``."""

    operator: str = _OPERATOR


class SupervisionEnded(Envelope):
    """The operator closed the supervision (a call still taken over is handed back first)."""

    type: Literal["supervision.ended.v1"] = "supervision.ended.v1"
    data: SupervisionEndedData
