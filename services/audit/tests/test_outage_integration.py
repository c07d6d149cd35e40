"""Audit through a PostgreSQL outage: events wait, none is dropped or stored twice.

A private PostgreSQL (this test stops it) and a real nats-server. Before, audit
nak'ed a failed batch with a fixed one-second delay and the consumer gave up on
a message after ten deliveries: an outage longer than about ten seconds lost
events for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.client import Client

from voicebus.audit.app import build
from voicebus.audit.consumer import DURABLE
from voicebus.audit.settings import AuditSettings
from voicebus.contracts import streams
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Envelope,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.embedded_postgres import EmbeddedPostgres
from voicebus.devkit.schemas import migrate_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

OUTAGE_S = 15.0
"""Longer than the old consumer's whole redelivery budget (10 deliveries, 1 s apart)."""


def _events(calls: int) -> list[Envelope]:
    out: list[Envelope] = []
    for _ in range(calls):
        env = {"tenant_id": "acme", "call_id": new_id(), "source": "test/1"}
        started = CallStartedData(direction="inbound", provider="twilio", agent_id="demo",
                                  gateway_instance="gw")  # fmt: skip
        out += [CallStarted(**env, data=started),
                CallEnded(**env, data=CallEndedData(reason="busy", duration_s=1.0))]  # fmt: skip
    return out


@pytest.fixture
def postgres(tmp_path: Path) -> Any:
    server = EmbeddedPostgres(data_dir=tmp_path / "pg")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def nc(embedded_nats_factory: Callable[..., Any]) -> AsyncIterator[Client]:
    client = await nats.connect(embedded_nats_factory().url)
    yield client
    await client.drain()


async def _publish(nc: Client, events: list[Envelope]) -> None:
    js = nc.jetstream()
    acks = [
        await js.publish_async(e.subject, e.to_bytes(), headers={"Nats-Msg-Id": e.id})
        for e in events
    ]
    await asyncio.gather(*acks)


async def test_events_published_while_postgres_is_down_are_all_stored_once(
    postgres: EmbeddedPostgres, nc: Client
) -> None:
    url = await postgres.create_database("outage")
    await migrate_all(url)
    settings = AuditSettings(nats_url=nc.connected_url.geturl() if nc.connected_url else "",
                             database_url=url, instance_id="o1")  # fmt: skip
    service, _ = build(settings)
    await service.start()
    before, during = _events(100), _events(500)
    try:
        await _publish(nc, before)
        db = await asyncpg.connect(url)
        async with asyncio.timeout(30):
            while await db.fetchval("SELECT count(*) FROM audit.call_events") < len(before):
                await asyncio.sleep(0.1)
        await db.close()

        await asyncio.to_thread(postgres.stop)
        await _publish(nc, during)
        await asyncio.sleep(OUTAGE_S)
        info = await nc.jetstream().consumer_info(streams.EVENTS.name, DURABLE)
        await asyncio.to_thread(postgres.start)

        db = await asyncpg.connect(url)
        try:
            async with asyncio.timeout(90):
                while await db.fetchval("SELECT count(*) FROM audit.call_events") < 1200:
                    await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # a duplicate would show up now
            ids = [r["id"] for r in await db.fetch("SELECT id FROM audit.call_events")]
            ended = await db.fetchval("SELECT count(*) FROM audit.calls WHERE status = 'ended'")
            chains = await db.fetchval(
                "SELECT count(*) FROM audit.calls WHERE chain_length = 2 AND chain_head IS NOT NULL"
            )
        finally:
            await db.close()
        letters = (await nc.jetstream().stream_info(streams.DEAD_LETTERS.name)).state.messages
    finally:
        await service.stop()
    assert len(ids) == len(set(ids)) == 1200
    assert set(ids) == {e.id for e in [*before, *during]}
    assert ended == chains == 600
    assert letters == 0
    # While the database was down the batch in hand was held, not redelivered over and over.
    assert info.config.max_deliver == -1
    assert info.num_redelivered == 0, info
