"""Wiring only: settings → service → tenancy store, webhooks → responders → FastAPI app →
routes."""

from __future__ import annotations

from fastapi import FastAPI

from voicebus.edge.api import PREFIX, Edge, install_api
from voicebus.edge.api.routes_campaigns import is_contacts_upload
from voicebus.edge.api.routes_usage import usage_router
from voicebus.edge.api.routes_webhooks import webhooks_router
from voicebus.edge.browser.routes import browser_router
from voicebus.edge.console.routes import console_dir, install_console
from voicebus.edge.migrations import MIGRATIONS
from voicebus.edge.retention_job import RetentionJob
from voicebus.edge.rpc import register_rpc
from voicebus.edge.settings import EdgeSettings
from voicebus.edge.tenancy.store import TenantStore
from voicebus.edge.webhooks.runner import WebhookRunner
from voicebus.runtime.body_limit import BodyLimit
from voicebus.runtime.rpc import RpcClient
from voicebus.runtime.service import Service


def build(settings: EdgeSettings | None = None) -> tuple[Service, FastAPI]:
    """The edge service and its ASGI app."""
    settings = settings or EdgeSettings()
    service = Service(settings, db_schema="edge", migrations=MIGRATIONS)
    store = TenantStore.from_settings(settings.credentials_key.get_secret_value())
    service.on_connected(store.open)
    webhooks = WebhookRunner(settings)
    service.on_connected(webhooks.open)
    service.on_startup(webhooks.start)
    service.on_shutdown(webhooks.stop)
    register_rpc(service.broker, store)
    app = FastAPI(
        title="voicebus",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served offline by install_api
        redoc_url=None,
    )
    edge = Edge.build(service, settings, store, webhooks.store)
    install_api(app, edge)
    app.include_router(webhooks_router(edge, webhooks), prefix=PREFIX)
    app.include_router(usage_router(edge, webhooks), prefix=PREFIX)
    signer = settings.tenant_signer
    client = RpcClient(lambda: service.nc, timeout_s=settings.rpc_timeout_s, signer=signer)
    app.include_router(browser_router(client, settings))
    slow = RpcClient(lambda: service.nc, timeout_s=settings.retention_timeout_s, signer=signer)
    retention = RetentionJob(store, slow, settings.retention_interval_s)
    service.on_startup(retention.start)
    service.on_shutdown(retention.stop)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, exempt=[is_contacts_upload])
    install_console(app, console_dir(settings.console_dir))
    return service, service.asgi(app)


def main() -> None:
    """Run the edge until SIGTERM."""
    service, app = build()
    service.run(app)
