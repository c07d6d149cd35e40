"""Wiring only: settings → service → subscribers → FastAPI app → routes."""

from __future__ import annotations

from fastapi import FastAPI

from voicebus.gateway.api import Edge, install_api
from voicebus.gateway.browser.routes import browser_router
from voicebus.gateway.call_leases import LiveCalls
from voicebus.gateway.context import Gateway
from voicebus.gateway.handlers import register
from voicebus.gateway.outbound_calls import Outbound
from voicebus.gateway.routes import telephony_router
from voicebus.gateway.settings import GatewaySettings
from voicebus.gateway.stream.media_streams import MediaStreams, media_providers
from voicebus.gateway.tenancy.accounts import StoredAccounts
from voicebus.gateway.tenancy.store import TenantStore
from voicebus.runtime.service import Service


def build(settings: GatewaySettings | None = None) -> tuple[Service, FastAPI]:
    """The gateway service and its ASGI app (the media WebSockets run beside it)."""
    settings = settings or GatewaySettings()
    service = Service(settings, hot_path=True, db_schema="gateway")
    tenants = TenantStore.from_settings(settings.credentials_key.get_secret_value())
    service.on_connected(tenants.open)
    app = FastAPI(
        title="voicebus gateway",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served offline by install_api
        redoc_url=None,
    )
    gateway = Gateway(
        service,
        settings,
        leases=LiveCalls(service),
        accounts=StoredAccounts(tenants),
    )
    register(service.broker, Outbound(gateway))
    app.state.media_streams = MediaStreams(service, gateway, media_providers(settings))
    app.include_router(telephony_router(gateway))
    install_api(app, Edge.build(gateway, tenants))
    app.include_router(browser_router(gateway))
    return service, service.asgi(app)


def main() -> None:
    """Run the gateway until SIGTERM."""
    service, app = build()
    service.run(app)
