"""JetStream replicas are a setting: applied when given, never silently reset when not.

Runs a real three-node nats-server cluster with JetStream (R3 needs three servers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType

from voicebus.contracts.streams import CALL_OWNERS, EVENTS
from voicebus.devkit.ports import free_port
from voicebus.runtime.errors import ProvisioningError
from voicebus.runtime.provision import kv_stream_name, provision
from voicebus.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration


async def _replicas(js: JetStreamContext) -> tuple[int | None, int | None]:
    events = (await js.stream_info(EVENTS.name)).config.num_replicas
    owners = (await js.stream_info(kv_stream_name(CALL_OWNERS.bucket))).config.num_replicas
    return events, owners


async def _wait_for_meta_leader(js: JetStreamContext, timeout: float = 30.0) -> None:
    """Until the cluster has elected its JetStream meta leader (it then answers requests)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await js.account_info()
            return
        except (nats.errors.Error, TimeoutError):  # no meta leader yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest_asyncio.fixture
async def cluster_nc(embedded_nats_factory: Callable[..., Any]) -> AsyncIterator[Client]:
    """A client on a fresh three-node JetStream cluster."""
    routes = [free_port() for _ in range(3)]
    servers = await asyncio.gather(
        *(
            asyncio.to_thread(
                embedded_nats_factory,
                extra_config={
                    "cluster": {
                        "name": "vb-test",
                        "listen": f"127.0.0.1:{port}",
                        "routes": [f"nats://127.0.0.1:{p}" for p in routes if p != port],
                    },
                },
            )
            for port in routes
        )
    )
    nc = await nats.connect(servers=[s.url for s in servers])
    try:
        await _wait_for_meta_leader(nc.jetstream())
        yield nc
    finally:
        await nc.drain()


async def test_replicas_applied_then_kept_when_unset(cluster_nc: Client) -> None:
    js = cluster_nc.jetstream()
    await provision(js)
    assert await _replicas(js) == (1, 1)  # unset on a fresh cluster: R1

    await provision(js, replicas=3)
    assert await _replicas(js) == (3, 3)

    # A process started without VB_JETSTREAM_REPLICAS (the bug: it forced R1 on every start).
    await provision(js)
    assert await _replicas(js) == (3, 3)

    # Said explicitly, a change is applied.
    await provision(js, replicas=1)
    assert await _replicas(js) == (1, 1)


async def test_more_replicas_than_servers_is_a_clear_error(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    nc = await nats.connect(server.url)
    try:
        with pytest.raises(ProvisioningError, match="replicas > 1 not supported"):
            await provision(nc.jetstream(), replicas=3)
    finally:
        await nc.drain()


def test_the_setting_is_read_from_vb_jetstream_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    class Settings(ServiceSettings):
        service_name = "probe"

    assert Settings().jetstream_replicas is None
    monkeypatch.setenv("VB_JETSTREAM_REPLICAS", "3")
    assert Settings().jetstream_replicas == 3
    monkeypatch.setenv("VB_JETSTREAM_REPLICAS", "0")
    with pytest.raises(ValueError, match=r"jetstream_replicas|VB_JETSTREAM_REPLICAS"):
        Settings()


async def test_storage_is_a_setting_and_never_silently_changed(
    embedded_nats_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Settings(ServiceSettings):
        service_name = "probe"

    assert Settings().jetstream_storage == "file"
    monkeypatch.setenv("VB_JETSTREAM_STORAGE", "memory")
    storage = Settings().jetstream_storage
    server = embedded_nats_factory()
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        await provision(js, storage=storage)
        assert (await js.stream_info(EVENTS.name)).config.storage == StorageType.MEMORY
        kv_stream = kv_stream_name(CALL_OWNERS.bucket)
        assert (await js.stream_info(kv_stream)).config.storage == StorageType.MEMORY
        await provision(js, storage="memory")  # the same again: nothing to do
        with pytest.raises(ProvisioningError, match=EVENTS.name):
            await provision(js, storage="file")  # JetStream cannot move a stream's storage
    finally:
        await nc.drain()
