"""Audit's bus consumer, wired into the service's lifecycle."""

from __future__ import annotations

from voicebus.audit.consumer import EventConsumer
from voicebus.audit.store import EventStore
from voicebus.runtime.service import Service


def register(service: Service, store: EventStore, *, batch_size: int = 3000) -> EventConsumer:
    """Pull and store every call event once the service has started; stop on shutdown."""
    consumer = EventConsumer(store, batch_size=batch_size)

    @service.on_startup
    async def start_consumer(svc: Service) -> None:
        await consumer.start(svc.nc, svc.js)

    @service.on_shutdown
    async def stop_consumer(_svc: Service) -> None:
        await consumer.stop()

    return consumer
