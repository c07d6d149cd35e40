"""Audit's bus subscribers: parse, store, count."""

from __future__ import annotations

import logging

from faststream.nats import NatsBroker, NatsMessage
from prometheus_client import Counter
from pydantic import ValidationError

from voicebus.audit.store import EventStore
from voicebus.contracts.events import parse_event
from voicebus.runtime.consumers import event_subscriber

log = logging.getLogger(__name__)

EVENTS_STORED = Counter(
    "voicebus_audit_events_stored", "Events persisted, by whether they were new.", ["new"]
)
EVENTS_REJECTED = Counter(
    "voicebus_audit_events_rejected", "Messages on VB_EVENTS that are not a valid event."
)


def register(broker: NatsBroker, store: EventStore) -> None:
    """Declare audit's subscribers on ``broker``."""

    @event_subscriber(
        broker,
        durable="audit-call-events",
        deliver_new=False,
        description="Persist every call event exactly once (idempotent on the event id).",
    )
    async def persist(msg: NatsMessage) -> None:
        try:
            event = parse_event(msg.body)
        except ValidationError as err:
            # Acked and dropped: redelivering an invalid body can never succeed.
            EVENTS_REJECTED.inc()
            log.warning("invalid event ignored", extra={"errors": err.error_count()})
            return
        metadata = msg.raw_message.metadata
        new = await store.append(event, stream_seq=metadata.sequence.stream)
        EVENTS_STORED.labels(new=str(new).lower()).inc()
