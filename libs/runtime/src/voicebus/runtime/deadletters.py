"""Setting a message aside in ``VB_DEAD_LETTERS`` instead of losing it.

Every consumer that gives up on a message goes through :func:`dead_letter`: the
original data and headers are republished on ``vb.dlq.<service>.<reason>`` with
the ``Vb-Dlq-*`` headers of :mod:`voicebus.contracts.deadletters`, counted in
``voicebus_dead_letters_total{service,reason}`` and logged (without the data).
Only once the dead letter is stored may the caller acknowledge the original.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import Counter

from voicebus.contracts import deadletters as dl
from voicebus.contracts import streams, subjects
from voicebus.contracts.deadletters import DeadLetterReason

__all__ = ["DEAD_LETTERS", "Origin", "dead_letter", "dead_letter_msg", "origin_of"]

log = logging.getLogger(__name__)

DEAD_LETTERS: Final = Counter(
    "voicebus_dead_letters",
    "Messages set aside in VB_DEAD_LETTERS instead of being lost, by service and reason.",
    ["service", "reason"],
)
PUBLISH_TIMEOUT_S: Final = 5.0
_MSG_ID: Final = "Nats-Msg-Id"
_DROPPED_PREFIX: Final = "Nats-Expected-"
"""Publish preconditions of the original publish: meaningless (and refused) on the DLQ."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a JetStream delivery came from, read from its ack subject."""

    stream: str
    consumer: str
    delivered: int
    stream_seq: int


def origin_of(reply: str | None) -> Origin | None:
    """Parse ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…`` (with or without
    a domain and account hash); None for anything else."""
    if not reply:
        return None
    tokens = reply.split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    at = 2 if len(tokens) == 9 else 4
    try:
        return Origin(tokens[at], tokens[at + 1], int(tokens[at + 2]), int(tokens[at + 3]))
    except (ValueError, IndexError):
        return None


async def dead_letter(
    js: JetStreamContext,
    *,
    service: str,
    reason: DeadLetterReason,
    detail: str,
    subject: str,
    data: bytes,
    headers: Mapping[str, str] | None,
    origin: Origin | None,
) -> None:
    """Store a message in ``VB_DEAD_LETTERS`` and count it; raises if it was not stored.

    Args:
        js: a JetStream context.
        service: the service giving up (the subject's second token).
        reason: why.
        detail: what went wrong, without personal data.
        subject: the subject the message was published on.
        data: its data, unchanged.
        headers: its headers, unchanged (``Nats-Msg-Id`` moves to ``Vb-Dlq-Nats-Msg-Id``).
        origin: its stream, consumer, deliveries and sequence, when known.

    Raises:
        nats.errors.Error, TimeoutError: the dead letter was not stored; keep the original.
    """
    out = {k: v for k, v in (headers or {}).items() if not k.startswith(_DROPPED_PREFIX)}
    original_id = out.pop(_MSG_ID, None)
    out.update(
        {
            dl.SUBJECT: subject,
            dl.REASON: reason.value,
            dl.DETAIL: dl.clip(detail),
            dl.SERVICE: service,
            dl.TIME: datetime.now(UTC).isoformat(),
        }
    )
    if original_id:
        out[dl.MSG_ID] = original_id
    if origin is not None:
        out.update(
            {
                dl.STREAM: origin.stream,
                dl.SEQUENCE: str(origin.stream_seq),
                dl.CONSUMER: origin.consumer,
                dl.DELIVERIES: str(origin.delivered),
            }
        )
        # The same stored message set aside twice (a crash before the ack) is kept once.
        out[_MSG_ID] = f"{origin.stream}:{origin.stream_seq}"
    await js.publish(
        subjects.dlq(service, reason.value),
        data,
        timeout=PUBLISH_TIMEOUT_S,
        stream=streams.DEAD_LETTERS.name,
        headers=out,
    )
    DEAD_LETTERS.labels(service, reason.value).inc()
    log.warning(
        "message set aside as a dead letter",
        extra={
            "service": service,
            "reason": reason.value,
            "detail": dl.clip(detail),
            "subject": subject,
            "stream_seq": origin.stream_seq if origin else None,
        },
    )


async def dead_letter_msg(
    js: JetStreamContext,
    msg: Msg,
    *,
    service: str,
    reason: DeadLetterReason,
    detail: str,
) -> None:
    """:func:`dead_letter` for a message as delivered by JetStream."""
    await dead_letter(
        js,
        service=service,
        reason=reason,
        detail=detail,
        subject=msg.subject,
        data=msg.data,
        headers=msg.headers,
        origin=origin_of(msg.reply),
    )
