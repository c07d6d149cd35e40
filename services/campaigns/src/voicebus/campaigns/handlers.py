"""Campaigns' FastStream subscribers: callees' do-not-call requests are honoured.

Call events (started, AMD, ended, recording) have their own ordered, batched
consumer in ``call_events.py``.
"""

from __future__ import annotations

import logging

from faststream.nats import NatsBroker
from prometheus_client import Counter

from voicebus.campaigns import phones
from voicebus.campaigns.store import Store
from voicebus.contracts.events import DncRequested
from voicebus.runtime.consumers import event_subscriber

log = logging.getLogger(__name__)

DNC_DURABLE = "campaigns-dnc-requests"
DNC_REQUESTS = Counter("voicebus_campaigns_dnc_requests", "Callees who asked not to be called.")


def register(broker: NatsBroker, store: Store) -> None:
    """Declare campaigns' subscribers on ``broker``."""

    @event_subscriber(
        broker,
        durable=DNC_DURABLE,
        event_type="dnc.requested",
        description="A callee asked not to be called: add the number to the tenant's DNC list.",
    )
    async def dnc_requested(event: DncRequested) -> None:
        number = event.data.to_number or await store.callee_of(event.tenant_id, event.call_id)
        try:
            e164 = phones.normalize(number or "", None)
        except phones.InvalidNumberError:
            log.warning(
                "dnc request without a valid number ignored", extra={"call_id": event.call_id}
            )
            return
        DNC_REQUESTS.inc()
        reason = event.data.reason or "callee asked not to be called"
        await store.dnc_add(event.tenant_id, None, [e164], reason, event.time)
