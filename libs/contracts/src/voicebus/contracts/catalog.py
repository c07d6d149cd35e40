"""Everything that travels on the bus, as one list: the source of the AsyncAPI document.

Each :class:`Channel` names a subject pattern (``{param}`` for a variable
token), the message that travels on it and who produces it. The dev kit turns
this list into AsyncAPI 3 with FastStream's generator; a test fails when the
committed document no longer matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel

from voicebus.contracts import streams, subjects
from voicebus.contracts.commands import COMMAND_CLASSES, ControlCommand, OriginateCall
from voicebus.contracts.events import EVENT_CLASSES, DtmfReceived
from voicebus.contracts.procedures import PROCEDURES


@dataclass(frozen=True, slots=True)
class Channel:
    """One subject shape and its message.

    Attributes:
        subject: subject pattern; ``{name}`` marks a variable token.
        message: pydantic model of the body, or ``bytes`` for raw audio.
        title: short name in the document.
        description: what it is, who publishes it, who consumes it.
        stream: JetStream stream storing it, or None for core NATS.
    """

    subject: str
    message: type[BaseModel] | type[bytes]
    title: str
    description: str
    stream: str | None


def _event_channels() -> list[Channel]:
    channels = []
    for cls in EVENT_CLASSES:
        doc = (cls.__doc__ or "").strip()
        channels.append(
            Channel(
                subject=f"{subjects.ROOT}.evt.{{tenant_id}}.{{call_id}}.{cls.event_name}",
                message=cls,
                title=cls.model_fields["type"].default,
                description=f"{doc} Stored in {streams.EVENTS.name}; subscribe with "
                "vb.evt.<tenant>.> and replay from any point.",
                stream=streams.EVENTS.name,
            )
        )
    return channels


def _command_channels() -> list[Channel]:
    channels = []
    for cls in COMMAND_CLASSES:
        doc = (cls.__doc__ or "").strip()
        if cls is OriginateCall:
            channels.append(
                Channel(
                    subject=subjects.cmd("call", "originate"),
                    message=cls,
                    title=cls.model_fields["type"].default,
                    description=f"{doc} Work queue {streams.COMMANDS.name}: exactly one "
                    "gateway handles each command.",
                    stream=streams.COMMANDS.name,
                )
            )
        elif issubclass(cls, ControlCommand):
            channels.append(
                Channel(
                    subject=f"{subjects.ROOT}.ctl.{{call_id}}.{cls.verb.value}",
                    message=cls,
                    title=cls.model_fields["type"].default,
                    description=f"{doc} Core NATS, only while the call is live.",
                    stream=None,
                )
            )
    return channels


_AUDIO_DOC = (
    "Raw PCM16LE mono samples, one 20 ms frame per message; no JSON, no base64. "
    "Headers: VB-Rate (Hz), VB-Seq (sequence), VB-Ts (media ms since stream start)"
)

AUDIO_CHANNELS: Final = (
    Channel(
        subject=f"{subjects.ROOT}.audio.{{call_id}}.in",
        message=bytes,
        title="audio.in",
        description=f"Caller audio, gateway → media and recorder. {_AUDIO_DOC}.",
        stream=None,
    ),
    Channel(
        subject=f"{subjects.ROOT}.audio.{{call_id}}.out",
        message=bytes,
        title="audio.out",
        description=f"Agent audio, media → gateway and recorder. {_AUDIO_DOC}, "
        "VB-Utt (agent utterance id), VB-Last (1 on an utterance's last frame).",
        stream=None,
    ),
    Channel(
        subject=f"{subjects.ROOT}.audio.{{call_id}}.played",
        message=bytes,
        title="audio.played",
        description="Playback marks, gateway → media: the provider played agent audio up to "
        "a frame. Empty payload; headers VB-Utt (utterance id), VB-Seq (last audio.out frame "
        "played), VB-Played-Ms (ms of the utterance heard so far).",
        stream=None,
    ),
)

KEYS_CHANNEL: Final = Channel(
    subject=f"{subjects.ROOT}.keys.{{call_id}}",
    message=DtmfReceived,
    title="keys",
    description="Keys the caller pressed while the call's keypad is masked (mask_keypad.v1), "
    "gateway → the call's orchestrator only: the real dtmf.received, never stored; the stored "
    "one shows each key as '*' (masked: true). Core NATS.",
    stream=None,
)

REPLY_TO: Final = "{reply_to}"
"""The address of every reply: the request's own reply subject (a NATS inbox)."""


def _procedure_channels() -> list[Channel]:
    channels = []
    for procedure in PROCEDURES:
        title = f"rpc.{procedure.name}"
        channels.append(
            Channel(
                subject=procedure.subject,
                message=procedure.request,
                title=title,
                description=f"{procedure.description} Request/reply on core NATS: one member "
                f"of the owner's queue group answers {procedure.reply.__name__} on the "
                f"request's reply subject ({title}.reply).",
                stream=None,
            )
        )
        channels.append(
            Channel(
                subject=REPLY_TO,
                message=procedure.reply,
                title=f"{title}.reply",
                description=f"Reply to {title}: ok and the payload, or ok=false and an error "
                "whose status is the same for the same fault in every service.",
                stream=None,
            )
        )
    return channels


DEAD_LETTER_CHANNEL: Final = Channel(
    subject=f"{subjects.ROOT}.dlq.{{service}}.{{reason}}",
    message=bytes,
    title="dead letter",
    description=(
        f"A message a consumer could not handle, set aside in {streams.DEAD_LETTERS.name} "
        "instead of lost: the original data byte for byte, the original headers, and "
        "Vb-Dlq-Subject (original subject), Vb-Dlq-Reason (invalid_message, "
        "storage_rejected, max_deliveries, handler_failed), Vb-Dlq-Detail (what went "
        "wrong, no personal data), Vb-Dlq-Service, Vb-Dlq-Stream and Vb-Dlq-Seq (where it "
        "was stored), Vb-Dlq-Consumer, Vb-Dlq-Deliveries, Vb-Dlq-Time and "
        "Vb-Dlq-Nats-Msg-Id (the original Nats-Msg-Id). Commands that exhaust their "
        "deliveries arrive here through JetStream's max-deliveries advisory."
    ),
    stream=streams.DEAD_LETTERS.name,
)

CHANNELS: Final[tuple[Channel, ...]] = (
    *_event_channels(),
    *_command_channels(),
    *AUDIO_CHANNELS,
    KEYS_CHANNEL,
    *_procedure_channels(),
    DEAD_LETTER_CHANNEL,
)
