"""The edge stack of the console's browser tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge_stack import EdgeStack
from nats.js.errors import KeyNotFoundError

from voicebus.contracts.streams import CALL_OWNERS, owner_key
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.runtime.leases import GATEWAY

LOOPBACK_HOSTS = ["127.0.0.1"]
"""Where the campaigns tests' stand-in carrier listens: an account's ``api_base_url`` may
name it, and webhooks may be delivered on loopback."""


class ConsoleStack(EdgeStack):
    """The edge stack, and its nats-server's monitoring URL (who subscribed to what). Provider
    accounts may point at loopback stand-in carriers, webhooks at loopback receivers."""

    def __init__(self, server: EmbeddedNats, postgres_url: str, root: Path) -> None:
        super().__init__(
            server.url,
            postgres_url,
            root,
            gateway={"provider_api_hosts": LOOPBACK_HOSTS},
            edge={"provider_api_hosts": LOOPBACK_HOSTS, "webhooks_allow_loopback": True},
        )
        self.monitor_url = server.monitor_url


async def hold_gateway_lease(
    edge: ConsoleStack, call_id: str
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """Renew the call's gateway lease, as the gateway holding its media stream does, until the
    returned event is set (without it the orchestrator ends the call as ``gateway_lost``)."""
    assert edge.nc is not None
    kv = await edge.nc.jetstream().key_value(CALL_OWNERS.bucket)
    key = owner_key(GATEWAY, call_id)
    await kv.put(key, b"gw-e2e")
    stop = asyncio.Event()

    async def renew() -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), CALL_OWNERS.ttl_s / 3)
            except TimeoutError:
                await kv.put(key, b"gw-e2e")
        await kv.delete(key)

    return stop, asyncio.get_running_loop().create_task(renew())


async def release(
    edge: ConsoleStack, call_id: str, lease: tuple[asyncio.Event, asyncio.Task[None]]
) -> None:
    """Once the orchestrator has let the ended call go, stop renewing the gateway's lease."""
    assert edge.nc is not None
    kv = await edge.nc.jetstream().key_value(CALL_OWNERS.bucket)
    async with asyncio.timeout(60):
        while True:
            try:
                await kv.get(owner_key("orchestrator", call_id))
            except KeyNotFoundError:
                break
            await asyncio.sleep(0.1)
    stop, renewing = lease
    stop.set()
    await renewing
