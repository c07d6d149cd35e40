"""Wiring only: settings → service → subscribers → FastAPI app → routes."""

from __future__ import annotations

from fastapi import FastAPI

from voicebus.contracts.events import EndReason
from voicebus.gateway import metrics
from voicebus.gateway.accounts import EdgeAccounts
from voicebus.gateway.call_leases import LiveCalls
from voicebus.gateway.call_slots import CallSlots
from voicebus.gateway.context import Gateway
from voicebus.gateway.handlers import register
from voicebus.gateway.outbound_calls import Outbound
from voicebus.gateway.providers import providers
from voicebus.gateway.routes import telephony_router
from voicebus.gateway.settings import GatewaySettings
from voicebus.gateway.stream.media_streams import MediaStreams, media_providers
from voicebus.gateway.webhook_nonces import WebhookNonces
from voicebus.runtime.body_limit import BodyLimit
from voicebus.runtime.rpc import RpcClient
from voicebus.runtime.service import Service


def build(settings: GatewaySettings | None = None) -> tuple[Service, FastAPI]:
    """The gateway service and its ASGI app (the media WebSockets run beside it).

    It keeps no database: tenants' provider accounts are the edge's, asked over the bus.
    """
    settings = settings or GatewaySettings()
    service = Service(settings, hot_path=True)
    app = FastAPI(title="voicebus gateway", openapi_url=None, docs_url=None, redoc_url=None)
    accounts = EdgeAccounts(
        RpcClient(lambda: service.nc, timeout_s=settings.account_lookup_timeout_s),
        ttl_s=settings.account_cache_ttl_s,
        stale_s=settings.account_stale_s,
        max_entries=settings.account_cache_size,
        api_hosts=settings.provider_api_hosts,
    )
    nonces = WebhookNonces()
    service.on_connected(nonces.open)
    slots = CallSlots()
    slots.attach(service)
    gateway = Gateway(
        service,
        settings,
        leases=LiveCalls(service),
        accounts=accounts,
        nonces=nonces,
        slots=slots,
    )
    register(service.broker, gateway, Outbound(gateway))
    app.state.media_streams = MediaStreams(service, gateway, media_providers(settings))
    app.include_router(telephony_router(gateway))
    metrics.initialize(((p.name, p.dialer is not None) for p in providers()), EndReason)
    app.add_middleware(BodyLimit, max_bytes=settings.max_webhook_bytes)
    return service, service.asgi(app)


def main() -> None:
    """Run the gateway until SIGTERM."""
    service, app = build()
    service.run(app)
