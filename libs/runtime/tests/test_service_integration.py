"""The service kit on a real nats-server: lifespan, health, readiness, metrics, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream import AckPolicy
from faststream.nats import PullSub
from nats.aio.msg import Msg

from voicebus.contracts.streams import EVENTS
from voicebus.runtime.service import Service
from voicebus.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo")


@pytest.fixture
def make_service(
    clean_env: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    embedded_nats_factory: Callable[..., Any],
) -> Callable[..., Service]:
    """A Service of the ``demo`` service on a private nats-server."""
    server = embedded_nats_factory()

    def make(**kwargs: Any) -> Service:
        settings = settings_cls(nats_url=server.url, instance_id="demo-it")
        return Service(settings, **kwargs)

    return make


async def test_lifespan_readiness_metrics_and_drain(
    make_service: Callable[..., Service], lifespan: Any
) -> None:
    service = make_service()
    handled: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    order: list[str] = []

    # A stream named by string would be declared by FastStream with its own
    # defaults; the kit must leave the contract's definition alone.
    @service.broker.subscriber(
        "vb.evt.acme.*.call.started",
        stream=EVENTS.name,
        durable="demo-test",
        pull_sub=PullSub(batch_size=8, timeout=0.5),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_started(body: dict[str, Any]) -> None:
        await handled.put(body)

    async def connected(svc: Service) -> None:
        order.append(f"connected:{svc.nc.is_connected}:{svc.broker.running}")

    async def startup(svc: Service) -> None:
        order.append(f"startup:{svc.nc.is_connected}:{svc.broker.running}")

    async def shutdown(svc: Service) -> None:
        order.append(f"shutdown:{svc.ready}:{svc.broker.running}")

    service.on_startup(startup)
    service.on_connected(connected)
    service.on_shutdown(shutdown)
    app = service.asgi()

    async with _client(app) as http:
        assert (await http.get("/healthz")).status_code == 200
        async with lifespan(app):
            nc = service.nc
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ready"}
            # Connected hooks run before the broker consumes, start-up hooks after.
            assert order == ["connected:True:False", "startup:True:True"]

            info = await service.js.stream_info(EVENTS.name)
            assert info.config.max_age == pytest.approx(EVENTS.max_age_s)

            await service.broker.publish(
                {"n": 1}, "vb.evt.acme.c1.call.started", stream=EVENTS.name
            )
            assert await asyncio.wait_for(handled.get(), 5) == {"n": 1}

            metrics = (await http.get("/metrics")).text
            assert 'voicebus_service_info{instance="demo-it",service="demo"} 1.0' in metrics
            assert "faststream_received_messages_total" in metrics
            assert 'app_name="voicebus-demo"' in metrics
            assert 'voicebus_service_ready{instance="demo-it",service="demo"} 1.0' in metrics
        assert order[-1] == "shutdown:False:True"  # hooks run before the broker stops
        assert nc.is_closed
        assert not service.broker.running
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503
        assert {"started", "nats", "jetstream", "broker"} <= set(not_ready.json()["failing"])
        metrics = (await http.get("/metrics")).text
        assert 'voicebus_service_info{instance="demo-it"' not in metrics


async def test_failing_check_is_named(make_service: Callable[..., Service], lifespan: Any) -> None:
    service = make_service(hot_path=True)
    healthy = True

    async def cache_ready() -> bool:
        return healthy

    async def broken() -> bool:
        raise RuntimeError("boom")

    service.add_readiness_check("cache", cache_ready)
    service.add_readiness_check("model", broken)
    app = service.asgi()
    async with _client(app) as http, lifespan(app):
        answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"status": "unavailable", "failing": ["model"]}
        healthy = False
        assert (await http.get("/readyz")).json()["failing"] == ["cache", "model"]


async def test_fastapi_app_keeps_its_routes_and_lifespan(
    make_service: Callable[..., Service], lifespan: Any
) -> None:
    service = make_service()
    events: list[str] = []

    @asynccontextmanager
    async def app_lifespan(_app: FastAPI) -> AsyncIterator[None]:
        events.append(f"app-start:{service.ready}")
        yield
        events.append(f"app-stop:{service.ready}")

    api = FastAPI(lifespan=app_lifespan)

    @api.get("/api/v1/ping")
    async def ping() -> dict[str, str]:
        return {"pong": service.name}

    app = service.asgi(api)
    assert app is api
    async with _client(app) as http, lifespan(app):
        assert (await http.get("/api/v1/ping")).json() == {"pong": "demo"}
        assert (await http.get("/readyz")).status_code == 200
        assert "/readyz" not in (await http.get("/openapi.json")).text
    # The app's lifespan runs inside the service's: after ready, before shutdown.
    assert events == ["app-start:True", "app-stop:True"]


async def test_broker_publishes_carry_trace_context(
    make_service: Callable[..., Service], lifespan: Any
) -> None:
    service = make_service(hot_path=True)
    app = service.asgi()
    async with lifespan(app):
        received: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()

        async def on_msg(msg: Msg) -> None:
            if not received.done():
                received.set_result(msg)

        await service.nc.subscribe("vb.test.traced", cb=on_msg)
        await service.nc.flush()
        await service.broker.publish({"x": 1}, "vb.test.traced")
        msg = await asyncio.wait_for(received, 5)
        assert msg.headers is not None
        assert msg.headers["traceparent"].startswith("00-")


async def test_start_failure_cleans_up(
    clean_env: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    service = Service(settings_cls(nats_url=server.url))

    async def explode(_svc: Service) -> None:
        raise RuntimeError("hook failed")

    service.on_startup(explode)
    with pytest.raises(RuntimeError, match="hook failed"):
        await service.start()
    assert not service.ready
    assert not service.broker.running
    assert service.db is None


async def test_readiness_follows_the_nats_connection(
    clean_env: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    service = Service(settings_cls(nats_url=server.url), hot_path=True)
    async with service.lifespan():
        assert all((await service.check_readiness()).values())
        server.stop()
        await _until(lambda: not service.nc.is_connected)
        failing = [n for n, ok in (await service.check_readiness()).items() if not ok]
        assert failing == ["nats"]
        server.start()
        await _until(lambda: service.nc.is_connected and service.broker.running)
        for _ in range(50):  # the broker's connection reconnects on its own schedule
            if all((await service.check_readiness()).values()):
                break
            await asyncio.sleep(0.1)
        assert all((await service.check_readiness()).values())


async def _until(condition: Callable[[], bool], within_s: float = 10) -> None:
    """Poll ``condition`` (client state has no event to wait on) until true or fail."""
    for _ in range(int(within_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_stops_while_nats_is_down(
    clean_env: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    service = Service(settings_cls(nats_url=server.url), hot_path=True)
    await service.start()
    nc = service.nc
    server.stop()
    await _until(lambda: not nc.is_connected)
    broker_nc = service.broker.config.connection_state.connection
    await asyncio.wait_for(service.stop(), 15)
    assert nc.is_closed
    assert broker_nc.is_closed  # not left reconnecting forever
    assert not service.broker.running
