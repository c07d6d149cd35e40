"""Providers register themselves; shared routes come from the registry."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from starlette.routing import Route, WebSocketRoute

from voicebus.contracts.telephony import TELEPHONY_PROVIDERS
from voicebus.gateway.app import build
from voicebus.gateway.context import Gateway
from voicebus.gateway.providers import get, providers, register
from voicebus.gateway.providers.twilio import PROVIDER
from voicebus.gateway.routes import telephony_router
from voicebus.gateway.settings import GatewaySettings
from voicebus.gateway.stream.media_streams import media_providers
from voicebus.runtime.tenant_keys import generate_keys

pytestmark = pytest.mark.unit


def test_twilio_is_registered() -> None:
    assert get("twilio") is PROVIDER
    assert PROVIDER in providers()
    assert PROVIDER.inbound_path == "/telephony/twilio/inbound/{agent_id}"
    assert PROVIDER.stream_path == "/ws/twilio"


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(PROVIDER)


def test_every_provider_gets_its_routes_and_the_gateway_serves_no_public_api() -> None:
    service, app = build(GatewaySettings())
    router = telephony_router(Gateway(service, GatewaySettings()))
    http = {r.path for r in router.routes if isinstance(r, Route) and "POST" in (r.methods or ())}
    assert not any(isinstance(r, WebSocketRoute) for r in app.routes)  # media: the lean server
    media = app.state.media_streams.server.paths
    for provider in providers():
        assert provider.inbound_path in http
        assert provider.stream_path in media
    assert "/ws/browser" in media  # development: browser calls are on
    # The REST API is the edge's: no OpenAPI document, no /api/v1 route here.
    assert app.openapi_url is None
    paths = {getattr(r, "path", "") for r in app.routes}
    assert not any(path.startswith("/api/") for path in paths)


def test_the_registry_holds_exactly_the_providers_of_the_contracts() -> None:
    # The edge accepts accounts for TELEPHONY_PROVIDERS without importing the gateway.
    assert {p.name for p in providers()} == TELEPHONY_PROVIDERS


def test_the_browser_socket_exists_only_with_browser_calls() -> None:
    secret = SecretStr("s" * 40)
    production = GatewaySettings(
        environment="production",
        twilio_auth_token=secret,
        stream_secret=secret,
        rpc_tenant_public_key=generate_keys()[1],
    )
    assert not production.browser_calls_enabled
    assert "/ws/browser" not in {p.stream_path for p in media_providers(production)}
    enabled = production.model_copy(update={"browser_calls": True})
    assert "/ws/browser" in {p.stream_path for p in media_providers(enabled)}
