"""Dead letters: messages a consumer could not handle, kept instead of lost.

A dead letter is the original message, byte for byte, republished on
``vb.dlq.<service>.<reason>`` in the stream ``VB_DEAD_LETTERS``. Its data is
the original data; its headers are the original headers plus the ``Vb-Dlq-*``
headers below, which say where it came from and why it was set aside. The
original ``Nats-Msg-Id`` moves to ``Vb-Dlq-Nats-Msg-Id`` (the dead letter's own
id is ``<stream>:<sequence>``, so dead-lettering one message twice stores it once).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import Field

from voicebus.contracts.events._base import Data, UtcTime

HEADER_PREFIX: Final = "Vb-Dlq-"
SUBJECT: Final = "Vb-Dlq-Subject"
"""The subject the message was published on."""
REASON: Final = "Vb-Dlq-Reason"
"""A :class:`DeadLetterReason`."""
DETAIL: Final = "Vb-Dlq-Detail"
"""What went wrong, for people (no personal data: field names, never values)."""
SERVICE: Final = "Vb-Dlq-Service"
"""The service whose consumer gave up."""
STREAM: Final = "Vb-Dlq-Stream"
"""The stream the message was stored in."""
SEQUENCE: Final = "Vb-Dlq-Seq"
"""Its sequence in that stream."""
CONSUMER: Final = "Vb-Dlq-Consumer"
"""The durable consumer that gave up."""
DELIVERIES: Final = "Vb-Dlq-Deliveries"
"""How many times it had been delivered."""
TIME: Final = "Vb-Dlq-Time"
"""When it was set aside (RFC 3339, UTC)."""
MSG_ID: Final = "Vb-Dlq-Nats-Msg-Id"
"""The original ``Nats-Msg-Id``."""

MAX_DETAIL: Final = 512


class DeadLetterReason(StrEnum):
    """Why a message was set aside (the last token of its dead-letter subject)."""

    INVALID_MESSAGE = "invalid_message"
    """Not a valid message of the contract (JSON, a field, a control character)."""
    STORAGE_REJECTED = "storage_rejected"
    """The database refused its data (e.g. a character PostgreSQL cannot store)."""
    MAX_DELIVERIES = "max_deliveries"
    """A command was delivered as often as its consumer allows and never handled."""
    HANDLER_FAILED = "handler_failed"
    """Its handler failed on every one of many deliveries (not an outage)."""


class DeadLetter(Data):
    """A dead letter as read back from ``VB_DEAD_LETTERS`` (for listing and replay)."""

    sequence: int = Field(ge=1, description="Sequence in VB_DEAD_LETTERS.", examples=[17])
    service: str = Field(description="Service that gave up.", examples=["audit"])
    reason: DeadLetterReason = Field(description="Why.", examples=["storage_rejected"])
    detail: str = Field(
        default="",
        description="What went wrong, without personal data.",
        examples=["the database refused it: UntranslatableCharacterError (SQLSTATE 22P05)"],
    )
    original_subject: str = Field(description="Where it was published.",
                                  examples=["vb.evt.acme.c1.call.initiated"])  # fmt: skip
    original_stream: str | None = Field(default=None, description="Stream it was stored in.",
                                        examples=["VB_EVENTS"])  # fmt: skip
    original_sequence: int | None = Field(default=None, description="Its sequence there.",
                                          examples=[42])  # fmt: skip
    consumer: str | None = Field(default=None, description="Consumer that gave up.",
                                 examples=["audit-call-events"])  # fmt: skip
    deliveries: int | None = Field(default=None, description="Deliveries before giving up.",
                                   examples=[1])  # fmt: skip
    dead_at: UtcTime | None = Field(default=None, description="When it was set aside.")
    size: int = Field(ge=0, description="Bytes of the original data.", examples=[512])


def clip(text: str) -> str:
    """A header value: one line, at most :data:`MAX_DETAIL` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_DETAIL else flat[: MAX_DETAIL - 1] + "…"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def read(sequence: int, headers: Mapping[str, str], size: int) -> DeadLetter:
    """The :class:`DeadLetter` a stored message's headers describe.

    Raises:
        pydantic.ValidationError: the headers are not a dead letter's.
    """
    when = headers.get(TIME)
    return DeadLetter(
        sequence=sequence,
        service=headers.get(SERVICE, ""),
        reason=headers.get(REASON, ""),  # type: ignore[arg-type]  # validated by the model
        detail=headers.get(DETAIL, ""),
        original_subject=headers.get(SUBJECT, ""),
        original_stream=headers.get(STREAM),
        original_sequence=_int(headers.get(SEQUENCE)),
        consumer=headers.get(CONSUMER),
        deliveries=_int(headers.get(DELIVERIES)),
        dead_at=datetime.fromisoformat(when) if when else None,
        size=size,
    )
