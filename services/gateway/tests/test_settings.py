"""Gateway settings: public URLs and secrets."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr, ValidationError

from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.tenant_keys import generate_keys

pytestmark = pytest.mark.unit
SIGNING_KEY, PUBLIC_KEY = generate_keys()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("VB_") and not name.upper().startswith("VB_TEST_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = GatewaySettings()
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.media_ws_url("/ws/twilio") == "ws://127.0.0.1:8090/ws/twilio"
    assert (settings.ws_port, settings.ws_max_connections, settings.ws_start_timeout_s) == (
        8090,
        1000,
        10.0,
    )
    assert settings.default_tenant == "default"
    assert settings.ws_max_message_bytes == 64 * 1024


def test_media_url_is_the_public_host_on_the_ws_port_wss_for_https(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VB_GATEWAY_PUBLIC_URL", "https://voice.example.com/edge/")
    monkeypatch.setenv("VB_GATEWAY_WS_PORT", "9443")
    settings = GatewaySettings()
    assert settings.public_http_url("/x") == "https://voice.example.com/edge/x"
    assert settings.media_ws_url("/ws/twilio") == "wss://voice.example.com:9443/ws/twilio"


def test_public_ws_url_names_where_providers_open_media_sockets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VB_GATEWAY_PUBLIC_WS_URL", "wss://media.example.com/vb/")
    settings = GatewaySettings()
    assert settings.media_ws_url("/ws/plivo") == "wss://media.example.com/vb/ws/plivo"


@pytest.mark.parametrize("url", ["https://x", "ws:///nohost", "wss://x/?a=1"])
def test_bad_public_ws_urls(url: str) -> None:
    with pytest.raises(ValidationError, match="PUBLIC_WS_URL"):
        GatewaySettings(public_ws_url=url)


@pytest.mark.parametrize("url", ["ftp://x", "voice.example.com", "https://x/?a=1", "https://x#f"])
def test_bad_public_urls(url: str) -> None:
    with pytest.raises(ValidationError, match="PUBLIC_URL"):
        GatewaySettings(public_url=url)


def test_tenant_must_be_a_token() -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(default_tenant="a.b")


def test_production_refuses_the_placeholder_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VB_ENVIRONMENT", "production")
    monkeypatch.setenv("VB_RPC_TENANT_PUBLIC_KEY", PUBLIC_KEY)  # the edge's signatures
    with pytest.raises(ValidationError, match="VB_GATEWAY_TWILIO_AUTH_TOKEN"):
        GatewaySettings(stream_secret=SecretStr("a-real-stream-secret-4f1c9e"))
    with pytest.raises(ValidationError, match="VB_GATEWAY_STREAM_SECRET"):
        GatewaySettings(twilio_auth_token=SecretStr("a-real-auth-token-7d2b0a"))
    settings = GatewaySettings(
        twilio_auth_token=SecretStr("a-real-auth-token-7d2b0a"),
        stream_secret=SecretStr("a-real-stream-secret-4f1c9e"),
    )
    assert settings.twilio_auth_token.get_secret_value() == "a-real-auth-token-7d2b0a"


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VB_GATEWAY_TWILIO_AUTH_TOKEN", "from-env-123")
    settings = GatewaySettings()
    assert settings.twilio_auth_token.get_secret_value() == "from-env-123"
    assert "from-env-123" not in repr(settings)


def test_browser_calls_are_off_in_production_unless_turned_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert GatewaySettings().browser_calls_enabled
    assert not GatewaySettings(browser_calls=False).browser_calls_enabled
    monkeypatch.setenv("VB_ENVIRONMENT", "production")
    monkeypatch.setenv("VB_RPC_TENANT_PUBLIC_KEY", PUBLIC_KEY)  # the edge's signatures
    real = {
        "twilio_auth_token": SecretStr("a-real-auth-token-7d2b0a"),
        "stream_secret": SecretStr("a-real-stream-secret-4f1c9e"),
    }
    assert not GatewaySettings(**real).browser_calls_enabled
    monkeypatch.setenv("VB_GATEWAY_BROWSER_CALLS", "true")
    assert GatewaySettings(**real).browser_calls_enabled


def test_the_gateway_has_no_edge_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The REST API's secrets belong to the edge now: a gateway neither reads nor needs them.
    monkeypatch.setenv("VB_ENVIRONMENT", "production")
    monkeypatch.setenv("VB_RPC_TENANT_PUBLIC_KEY", PUBLIC_KEY)  # the edge's signatures
    monkeypatch.setenv("VB_GATEWAY_ADMIN_TOKEN", "dev-secret")
    monkeypatch.setenv("VB_GATEWAY_CREDENTIALS_KEY", "dev-secret")
    settings = GatewaySettings(
        twilio_auth_token=SecretStr("a-real-auth-token-7d2b0a"),
        stream_secret=SecretStr("a-real-stream-secret-4f1c9e"),
    )
    assert not hasattr(settings, "admin_token")
    assert not hasattr(settings, "credentials_key")
