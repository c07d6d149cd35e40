"""The dev stack's environment per service: ports, and who gets the database."""

from __future__ import annotations

import pytest

from voicebus.devkit.stack import DEFAULT_PORTS, SERVICES, service_env

pytestmark = pytest.mark.unit

NATS = "nats://127.0.0.1:4222"
DB = "postgresql://voicebus@127.0.0.1:5432/voicebus"


def test_every_service_has_its_documented_port() -> None:
    assert SERVICES[-1] == "edge"
    assert DEFAULT_PORTS["gateway"] == 8080
    assert DEFAULT_PORTS["audit"] == 8085
    assert DEFAULT_PORTS["edge"] == 8086


def test_the_gateway_gets_no_database_url_even_from_the_callers_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VB_DATABASE_URL", "postgresql://someone@elsewhere/db")
    gateway = service_env("gateway", 8080, NATS, DB, {"VB_DATABASE_URL": "postgresql://x/y"})
    assert "VB_DATABASE_URL" not in gateway
    assert gateway["VB_GATEWAY_PUBLIC_URL"] == "http://127.0.0.1:8080"
    edge = service_env("edge", 8086, NATS, DB)
    assert edge["VB_DATABASE_URL"] == DB
    assert edge["VB_EDGE_HTTP_PORT"] == "8086"
    assert service_env("audit", 8085, NATS, DB)["VB_DATABASE_URL"] == DB
