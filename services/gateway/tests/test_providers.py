"""Providers register themselves; shared routes come from the registry."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from starlette.routing import Route, WebSocketRoute

from voicebus.gateway.app import build
from voicebus.gateway.context import Gateway
from voicebus.gateway.providers import get, providers, register
from voicebus.gateway.providers.twilio import PROVIDER
from voicebus.gateway.routes import telephony_router
from voicebus.gateway.settings import GatewaySettings
from voicebus.gateway.stream.media_streams import media_providers

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
    assert not any(isinstance(r, WebSocketRoute) for r in app.routes)  # media: the lean server
    media = app.state.media_streams.server.paths
    for provider in providers():
        assert provider.inbound_path in http
        assert provider.stream_path in media
    assert "/ws/browser" in media  # development: the browser page is on
    assert not any("/telephony/" in path for path in app.openapi()["paths"])


def test_the_browser_socket_exists_only_with_the_browser_page() -> None:
    secret = SecretStr("s" * 40)
    production = GatewaySettings(
        environment="production",
        twilio_auth_token=secret,
        stream_secret=secret,
        admin_token=secret,
        credentials_key=SecretStr(Fernet.generate_key().decode()),
    )
    assert not production.browser_page_enabled
    assert "/ws/browser" not in {p.stream_path for p in media_providers(production)}
    enabled = production.model_copy(update={"browser_page": True})
    assert "/ws/browser" in {p.stream_path for p in media_providers(enabled)}
