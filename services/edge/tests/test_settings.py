"""Edge settings: port, secrets, the browser page switch."""

from __future__ import annotations

import os

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from voicebus.edge.settings import EdgeSettings
from voicebus.runtime.tenant_keys import generate_keys

pytestmark = pytest.mark.unit
SIGNING_KEY, PUBLIC_KEY = generate_keys()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("VB_") and not name.upper().startswith("VB_TEST_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = EdgeSettings()
    assert settings.http_port == 8086
    assert settings.connection_name.startswith("edge/")
    assert settings.browser_page_enabled
    assert settings.browser_page_tenant == "default"
    assert settings.rpc_timeout_s == 2.0


def test_settings_come_from_the_edges_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VB_EDGE_ADMIN_TOKEN", "from-env-7f2a")
    monkeypatch.setenv("VB_EDGE_API_RATE_LIMIT_PER_MINUTE", "42")
    monkeypatch.setenv("VB_GATEWAY_ADMIN_TOKEN", "the-gateways-is-not-read")
    settings = EdgeSettings()
    assert settings.admin_token.get_secret_value() == "from-env-7f2a"
    assert settings.api_rate_limit_per_minute == 42
    assert "from-env-7f2a" not in repr(settings)


def test_the_page_is_off_in_production_unless_turned_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VB_ENVIRONMENT", "production")
    monkeypatch.setenv("VB_RPC_TENANT_SIGNING_KEY", SIGNING_KEY)  # the edge's signatures
    real = {
        "admin_token": SecretStr("a-real-admin-token-5e8a1c"),
        "credentials_key": SecretStr(Fernet.generate_key().decode()),
        "session_secret": SecretStr("a-real-session-secret-0c4d7e"),
    }
    assert not EdgeSettings(**real).browser_page_enabled
    assert EdgeSettings(**real, browser_page=True).browser_page_enabled


def test_production_refuses_the_placeholder_session_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VB_ENVIRONMENT", "production")
    monkeypatch.setenv("VB_RPC_TENANT_SIGNING_KEY", SIGNING_KEY)  # the edge's signatures
    with pytest.raises(ValidationError, match="VB_EDGE_SESSION_SECRET"):
        EdgeSettings(
            admin_token=SecretStr("a-real-admin-token-5e8a1c"),
            credentials_key=SecretStr(Fernet.generate_key().decode()),
        )


def test_the_page_tenant_must_be_a_token() -> None:
    with pytest.raises(ValidationError):
        EdgeSettings(browser_page_tenant="a.b")
