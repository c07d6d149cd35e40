"""The service kit in memory: broker wiring and HTTP routes before anything connects."""

from __future__ import annotations

import logging

import httpx
import pytest
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from starlette.applications import Starlette

from voicebus.runtime.broker import BROKER_LOGGER
from voicebus.runtime.bus_metrics import PatternPrometheusMiddleware
from voicebus.runtime.delivery import DeliveryPolicy
from voicebus.runtime.errors import VoicebusError
from voicebus.runtime.service import Service
from voicebus.runtime.settings import ServiceSettings

pytestmark = pytest.mark.component


@pytest.fixture
def service(clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]) -> Service:
    # Never started: the URL only has to be well-formed.
    return Service(settings_cls(nats_url="nats://127.0.0.1:1", instance_id="demo-c"))


def test_broker_has_metrics_and_tracing(service: Service) -> None:
    assert isinstance(service.broker, NatsBroker)
    kinds = {type(m) for m in service.broker.config.broker_middlewares}
    assert kinds == {NatsTelemetryMiddleware, PatternPrometheusMiddleware, DeliveryPolicy}
    assert logging.getLogger(BROKER_LOGGER).level == logging.WARNING


def test_hot_path_broker_has_no_logger(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    hot = Service(settings_cls(), hot_path=True)
    assert type(hot.broker.config.logger.params_storage).__name__ == "EmptyLoggerStorage"


def test_connections_exist_only_after_start(service: Service) -> None:
    with pytest.raises(VoicebusError, match="after start"):
        _ = service.nc
    with pytest.raises(VoicebusError, match="after start"):
        _ = service.js
    assert service.db is None
    assert not service.ready


def test_readiness_names_must_be_unique(service: Service) -> None:
    async def ok() -> bool:
        return True

    service.add_readiness_check("cache", ok)
    for name in ("cache", "nats", "database"):
        with pytest.raises(VoicebusError, match=name):
            service.add_readiness_check(name, ok)


def test_bad_schema_is_refused_at_construction(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    with pytest.raises(VoicebusError, match="schema"):
        Service(settings_cls(), db_schema="Audit-Log")


def test_asyncapi_lists_subscribers(service: Service) -> None:
    @service.broker.subscriber("vb.evt.*.*.call.ended")
    async def on_ended(body: dict[str, object]) -> None:
        del body

    document = service.asyncapi_json()
    assert "voicebus demo" in document
    assert "call.ended" in document


async def test_routes_before_start(service: Service) -> None:
    app = service.asgi()
    assert isinstance(app, Starlette)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "failing": ["broker", "jetstream", "nats", "started"],
        }
        metrics = await http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
    with pytest.raises(VoicebusError, match="already mounted"):
        service.asgi(app)
