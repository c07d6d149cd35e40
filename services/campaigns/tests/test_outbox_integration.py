"""Decision events go through the outbox: committed with the decision, published by the relay.

Before, they were published after the commit by a fire-and-forget task: a crash
in between lost them. Here a dial pass and an outcome commit their events to the
``outbox`` table and nothing reaches ``VB_EVENTS`` until the relay runs; a relay
that publishes and dies before deleting publishes again without a duplicate; a
relay whose bus is away keeps every row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import time
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.campaigns import importer
from voicebus.campaigns.call_events import CallEvents
from voicebus.campaigns.clock import FakeClock
from voicebus.campaigns.dialer import Dialer, DialerConfig
from voicebus.campaigns.outbox import OutboxRelay
from voicebus.campaigns.outcomes import Outcomes
from voicebus.campaigns.publisher import Publisher
from voicebus.campaigns.store import Store
from voicebus.contracts import campaigns as api
from voicebus.contracts import streams
from voicebus.contracts.events import CallEnded, CallEndedData
from voicebus.devkit.campaign.contacts import MONDAY_14_UTC
from voicebus.runtime import db as dbkit
from voicebus.runtime.provision import provision

pytestmark = pytest.mark.integration

NUMBERS = [f"+44207946{i:04d}" for i in range(6)]


@pytest.fixture
async def parts(
    embedded_nats_factory: Callable[..., Any], database_url: str
) -> AsyncIterator[tuple[Client, AsyncEngine, Store, Publisher]]:
    nc = await nats.connect(embedded_nats_factory().url)
    await provision(nc.jetstream())
    engine = dbkit.create_engine(database_url, "campaigns")
    yield nc, engine, Store(engine), Publisher(nc.jetstream())
    await engine.dispose()
    await nc.drain()


async def _events_stored(nc: Client) -> int:
    return int((await nc.jetstream().stream_info(streams.EVENTS.name)).state.messages)


async def _outbox(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one())


async def _running_campaign(store: Store, clock: FakeClock) -> str:
    all_day = {d: [api.TimeRange(start=time(0), end=time.max)] for d in api.Weekday}
    spec = api.CampaignSpec(name="outbox", agent_id="demo", caller_ids=["+442079460999"],
                            windows=all_day, concurrency=10, pacing_cps=100)  # fmt: skip
    campaign = await store.create("acme", spec, clock.now())
    body = ("phone\n" + "\n".join(NUMBERS) + "\n").encode()
    parsed = importer.parse_chunk(body, api.UploadFormat.CSV, 1, None, "GB")
    await store.upload("acme", campaign.campaign_id, "u1", parsed.rows, parsed.errors,
                       parsed.read, parsed.header, clock.now())  # fmt: skip
    moved = await store.set_status(
        "acme", campaign.campaign_id, [api.CampaignStatus.DRAFT], api.CampaignStatus.RUNNING,
        clock.now(),
    )  # fmt: skip
    assert moved is not None
    return campaign.campaign_id


async def test_decisions_and_their_events_commit_together_and_publish_once(
    parts: tuple[Client, AsyncEngine, Store, Publisher],
) -> None:
    nc, engine, store, publisher = parts
    clock = FakeClock(MONDAY_14_UTC)
    await _running_campaign(store, clock)
    pokes: list[int] = []
    dialer = Dialer(store, publisher, clock, DialerConfig(instance_id="t1", source="campaigns/t1"))
    dialer.on_staged = lambda: pokes.append(1)
    relay = OutboxRelay(store, publisher, batch=7)

    assert await dialer.tick() == len(NUMBERS)
    staged = await _outbox(engine)
    assert staged == 3 * len(NUMBERS)  # dnc.checked, window.checked, attempt.dialed per dial
    assert await _events_stored(nc) == 0  # nothing left the database before the relay ran
    assert pokes == [1]

    # The relay's bus is away: every row stays.
    dead = await nats.connect(nc.connected_url.geturl() if nc.connected_url else "")
    await dead.close()
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the closed client raises
        await OutboxRelay(store, Publisher(dead.jetstream())).flush_once()
    assert await _outbox(engine) == staged

    while await relay.flush_once():
        pass
    assert await _outbox(engine) == 0
    assert await _events_stored(nc) == staged

    # Outcomes stage their events too; then a relay publishes them and dies before its
    # delete commits: the same rows come back and are published again, stored once.
    outcomes = Outcomes(store, publisher, clock, "campaigns/t1")
    calls = CallEvents(outcomes, "campaigns/t1", 3600.0)
    async with engine.connect() as conn:
        attempt_ids = [r[0] for r in (await conn.execute(text("SELECT call_id FROM attempts")))]
    busy = CallEndedData(reason="busy", duration_s=None)
    await calls.apply(
        [CallEnded(tenant_id="acme", call_id=a, source="gw/1", data=busy) for a in attempt_ids]
    )
    outcome_rows = await _outbox(engine)
    assert outcome_rows >= len(NUMBERS)  # attempt.outcome (and attempt.scheduled for retries)
    async with engine.begin() as conn:
        copied = (await conn.execute(text("SELECT subject, msg_id, body FROM outbox"))).all()
    while await relay.flush_once():
        pass
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO outbox (subject, msg_id, body, created_at) "
                 "SELECT s, i, b, now() FROM unnest(CAST(:s AS text[]), CAST(:i AS text[]), "
                 "CAST(:b AS bytea[])) AS t(s, i, b)"),
            {"s": [r.subject for r in copied], "i": [r.msg_id for r in copied],
             "b": [r.body for r in copied]},
        )  # fmt: skip
    while await relay.flush_once():
        pass
    assert await _outbox(engine) == 0
    assert await _events_stored(nc) == staged + outcome_rows  # the repeats were deduplicated
