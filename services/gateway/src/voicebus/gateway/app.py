"""Wiring only: settings → service → subscribers → FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from voicebus.gateway.handlers import register
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.service import Service


def build(settings: GatewaySettings | None = None) -> tuple[Service, FastAPI]:
    """The gateway service and its ASGI app."""
    service = Service(settings or GatewaySettings(), hot_path=True)
    register(service.broker, service.settings.connection_name)
    app = FastAPI(title="voicebus gateway", openapi_url="/api/v1/openapi.json")
    return service, service.asgi(app)


def main() -> None:
    """Run the gateway until SIGTERM."""
    service, app = build()
    service.run(app)
