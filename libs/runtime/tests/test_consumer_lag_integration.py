"""Consumer lag gauges read from a real nats-server's consumer info."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from prometheus_client import REGISTRY

from voicebus.runtime.consumer_lag import ConsumerLagWatch

pytestmark = pytest.mark.integration


def _gauge(name: str, consumer: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"stream": "LAGTEST", "consumer": consumer})


async def test_pending_ack_pending_and_redelivered(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="LAGTEST", subjects=["lag.>"]))
        config = ConsumerConfig(
            durable_name="lag-worker", ack_policy=AckPolicy.EXPLICIT, ack_wait=30
        )
        await js.add_consumer("LAGTEST", config)
        for i in range(5):
            await js.publish(f"lag.{i}", b"x")
        watch = ConsumerLagWatch([("LAGTEST", "lag-worker"), ("LAGTEST", "missing")])

        await watch.poll(js)
        assert _gauge("voicebus_jetstream_consumer_pending", "lag-worker") == 5
        assert _gauge("voicebus_jetstream_consumer_ack_pending", "lag-worker") == 0
        assert _gauge("voicebus_jetstream_consumer_pending", "missing") is None

        sub = await js.pull_subscribe_bind("lag-worker", stream="LAGTEST")
        first, held = await sub.fetch(2, timeout=5)
        await first.ack_sync()
        await watch.poll(js)
        assert _gauge("voicebus_jetstream_consumer_pending", "lag-worker") == 3
        assert _gauge("voicebus_jetstream_consumer_ack_pending", "lag-worker") == 1
        assert _gauge("voicebus_jetstream_consumer_redelivered", "lag-worker") == 0

        await held.nak()  # delivered again with the rest
        again: list[Any] = []
        while len(again) < 4:
            again += await sub.fetch(4 - len(again), timeout=5)
        await watch.poll(js)
        assert _gauge("voicebus_jetstream_consumer_pending", "lag-worker") == 0
        assert _gauge("voicebus_jetstream_consumer_ack_pending", "lag-worker") == 4
        assert _gauge("voicebus_jetstream_consumer_redelivered", "lag-worker") == 1
    finally:
        await nc.close()
