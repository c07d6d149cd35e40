"""Providers register themselves; shared routes come from the registry."""

from __future__ import annotations

import pytest
from starlette.routing import Route, WebSocketRoute

from voicebus.gateway.app import build
from voicebus.gateway.context import Gateway
from voicebus.gateway.providers import get, providers, register
from voicebus.gateway.providers.twilio import PROVIDER
from voicebus.gateway.routes import telephony_router
from voicebus.gateway.settings import GatewaySettings

pytestmark = pytest.mark.unit


def test_twilio_is_registered() -> None:
    assert get("twilio") is PROVIDER
    assert PROVIDER in providers()
    assert PROVIDER.inbound_path == "/telephony/twilio/inbound/{agent_id}"
    assert PROVIDER.stream_path == "/ws/twilio"


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(PROVIDER)


def test_every_provider_gets_its_routes_and_none_is_in_the_public_api() -> None:
    service, app = build(GatewaySettings())
    router = telephony_router(Gateway(service, GatewaySettings()))
    http = {r.path for r in router.routes if isinstance(r, Route) and "POST" in (r.methods or ())}
    ws = {r.path for r in router.routes if isinstance(r, WebSocketRoute)}
    for provider in providers():
        assert provider.inbound_path in http
        assert provider.stream_path in ws
    assert not any("/telephony/" in path for path in app.openapi()["paths"])
