"""Campaigns' bus subscribers: call events drive attempts; callees' DNC requests are honoured."""

from __future__ import annotations

import logging

from faststream.nats import NatsBroker
from nats.aio.client import Client
from prometheus_client import Counter

from voicebus.campaigns import control
from voicebus.campaigns.outcomes import Outcomes
from voicebus.campaigns.store import Store
from voicebus.contracts.events import (
    AmdDetected,
    CallEnded,
    CallStarted,
    DncRequested,
    RecordingReady,
)
from voicebus.runtime.consumers import event_subscriber

log = logging.getLogger(__name__)

OUTCOMES = Counter("voicebus_campaigns_call_outcomes", "Call outcomes seen, by reason.", ["reason"])
DNC_REQUESTS = Counter("voicebus_campaigns_dnc_requests", "Callees who asked not to be called.")


class Bus:
    """What handlers need that exists only once the service has started (raw NATS)."""

    nc: Client | None = None
    source: str = "campaigns"
    max_call_s: float = 4 * 3600.0


def register(broker: NatsBroker, outcomes: Outcomes, store: Store, bus: Bus) -> None:
    """Declare campaigns' subscribers on ``broker``."""

    @event_subscriber(
        broker,
        durable="campaigns-call-outcomes",
        event_type="call.ended",
        description="Call outcomes: they end attempts and drive retries.",
    )
    async def ended(event: CallEnded) -> None:
        OUTCOMES.labels(event.data.reason.value).inc()
        await outcomes.ended(
            event.tenant_id, event.call_id, event.data.reason, event.data.duration_s
        )

    @event_subscriber(
        broker,
        durable="campaigns-call-answers",
        event_type="call.started",
        description="Answered campaign calls (notification campaigns speak their message).",
    )
    async def started(event: CallStarted) -> None:
        spec = await outcomes.answered(event.tenant_id, event.call_id, bus.max_call_s)
        if spec is not None and bus.nc is not None:
            await control.on_answer(bus.nc, spec, event.tenant_id, event.call_id, bus.source)

    @event_subscriber(
        broker,
        durable="campaigns-amd",
        event_type="amd.detected",
        description="Answering-machine results: the campaign's machine policy.",
    )
    async def amd(event: AmdDetected) -> None:
        result = event.data.result.value
        spec = await outcomes.amd(event.tenant_id, event.call_id, result)
        if spec is not None and bus.nc is not None:
            await control.on_amd(bus.nc, spec, event.tenant_id, event.call_id, result, bus.source)

    @event_subscriber(
        broker,
        durable="campaigns-recordings",
        event_type="recording.ready",
        description="Recording ids for the campaign report.",
    )
    async def recording(event: RecordingReady) -> None:
        await outcomes.recording(event.tenant_id, event.call_id, event.data.recording_id)

    @event_subscriber(
        broker,
        durable="campaigns-dnc-requests",
        event_type="dnc.requested",
        description="A callee asked not to be called: add the number to the tenant's DNC list.",
    )
    async def dnc_requested(event: DncRequested) -> None:
        number = event.data.to_number or await store.callee_of(event.tenant_id, event.call_id)
        if number is None:
            log.warning("dnc request without a number ignored", extra={"call_id": event.call_id})
            return
        DNC_REQUESTS.inc()
        reason = event.data.reason or "callee asked not to be called"
        await store.dnc_add(event.tenant_id, None, [number], reason, event.time)
