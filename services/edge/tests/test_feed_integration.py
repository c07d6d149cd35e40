"""The live feed on a real nats-server: one tenant's events, in order, and a stream whose
reader falls behind ends instead of growing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from voicebus.contracts.subjects import evt
from voicebus.edge.api.feed import NatsEventFeed

pytestmark = pytest.mark.integration

# ``nc._subs``: nats-py has no public list of a connection's subscriptions.


@pytest.fixture
async def nc(embedded_nats_factory: Any) -> AsyncIterator[Client]:
    client = await nats.connect(embedded_nats_factory().url)
    yield client
    await client.drain()


async def _handed_over(nc: Client) -> None:
    """Wait until every message published so far went through the subscriptions' callbacks:
    the server echoes them to this connection before the flush's PONG, and a subscription's
    count of pending messages drops as its callback takes each (ours never awaits)."""
    await nc.flush()
    for _ in range(1000):
        if all(sub.pending_msgs == 0 for sub in nc._subs.values()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the messages were not handed to the feed")


async def test_a_stream_carries_its_tenants_events_in_order_and_no_others(nc: Client) -> None:
    stream = await NatsEventFeed(lambda: nc).open("acme")  # subscribed once it returns
    events = stream.__aiter__()
    await nc.publish(evt("globex", "c9", "call.started"), b'{"n": "theirs"}')
    for n in range(5):
        await nc.publish(evt("acme", "c1", "transcript.final"), b'{"n": %d}' % n)
    got = [await asyncio.wait_for(anext(events), 10) for _ in range(5)]
    assert got == [b'{"n": %d}' % n for n in range(5)]
    await stream.close()
    await nc.flush()
    assert not nc._subs


async def test_a_reader_that_falls_behind_loses_its_stream(nc: Client) -> None:
    stream = await NatsEventFeed(lambda: nc, queue_max=10).open("acme")
    events = stream.__aiter__()
    await nc.publish(evt("acme", "c1", "call.started"), b"0")
    assert await asyncio.wait_for(anext(events), 10) == b"0"
    for n in range(1, 50):  # nobody reads meanwhile
        await nc.publish(evt("acme", "c1", "transcript.final"), str(n).encode())
    await _handed_over(nc)
    got = [data async for data in events]
    assert got == [str(n).encode() for n in range(1, 11)]  # what fitted, then the end
    assert not nc._subs
