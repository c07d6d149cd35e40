"""Batched pulls on a real nats-server: a backlog comes in batches, a trickle at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import nats
import pytest
from nats.js.api import ConsumerConfig, StreamConfig

from voicebus.audit.puller import Puller

pytestmark = pytest.mark.integration


async def test_backlog_in_batches_then_the_next_message_as_it_comes(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="T", subjects=["t.>"]))
    await js.add_consumer("T", ConsumerConfig(durable_name="d", ack_policy="explicit"))
    await asyncio.gather(*(js.publish(f"t.{i}", str(i).encode()) for i in range(2500)))
    puller = Puller(nc, "T", "d")
    await puller.start()
    try:
        got: list[bytes] = []
        for want in (1000, 1000, 500):
            batch = await puller.fetch(1000, timeout=5.0)
            assert len(batch) == want
            got += [m.data for m in batch]
            for msg in batch:
                await msg.ack()
        assert sorted(int(d) for d in got) == list(range(2500))

        started = time.monotonic()
        assert await puller.fetch(1000, timeout=0.5) == []
        assert time.monotonic() - started < 3.0

        async def later() -> None:
            await asyncio.sleep(0.3)
            await js.publish("t.x", b"late")

        publisher = asyncio.create_task(later())
        batch = await puller.fetch(1000, timeout=5.0)
        await publisher
        assert [m.data for m in batch] == [b"late"]
    finally:
        await puller.stop()
        await nc.drain()
