"""Campaigns' bus subscribers."""

from __future__ import annotations

from faststream.nats import NatsBroker
from prometheus_client import Counter

from voicebus.contracts.events import CallEnded
from voicebus.runtime.consumers import event_subscriber

OUTCOMES = Counter("voicebus_campaigns_call_outcomes", "Call outcomes seen, by reason.", ["reason"])


def register(broker: NatsBroker) -> None:
    """Declare campaigns' subscribers on ``broker``."""

    @event_subscriber(
        broker,
        durable="campaigns-call-outcomes",
        event_type="call.ended",
        description="Call outcomes; they drive campaign retries once campaigns exist.",
    )
    async def outcome(event: CallEnded) -> None:
        OUTCOMES.labels(event.data.reason.value).inc()
