"""Wiring only: settings → service → store → subscribers → ASGI app."""

from __future__ import annotations

from starlette.applications import Starlette

from voicebus.audit import consumer
from voicebus.audit.handlers import register
from voicebus.audit.migrations import MIGRATIONS
from voicebus.audit.rpc import register_rpc
from voicebus.audit.settings import AuditSettings
from voicebus.audit.store import EventStore
from voicebus.contracts import streams
from voicebus.runtime.consumer_lag import ConsumerLagWatch
from voicebus.runtime.errors import ConfigurationError
from voicebus.runtime.service import Service


def build(settings: AuditSettings | None = None) -> tuple[Service, Starlette]:
    """The audit service and its ASGI app."""
    service = Service(settings or AuditSettings(), db_schema="audit", migrations=MIGRATIONS)
    store = EventStore()
    register(service, store)
    register_rpc(service.broker, service)
    ConsumerLagWatch([(streams.EVENTS.name, consumer.DURABLE)]).install(service)

    @service.on_connected
    async def open_store(svc: Service) -> None:
        if svc.db is None:
            raise ConfigurationError("audit needs VB_DATABASE_URL: it stores every event")
        store.bind(svc.db)

    return service, service.asgi()


def main() -> None:
    """Run the audit service until SIGTERM."""
    service, app = build()
    service.run(app)
