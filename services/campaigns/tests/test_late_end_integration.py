"""A call's end that arrives after the reaper gave up on the attempt corrects its outcome.

While PostgreSQL is down, ``call.ended`` waits in the campaigns consumer, retried with a
growing backoff; a dialed attempt's lease can run out first, and the reaper ends it as
``timeout``. The real end, applied once the database is back, must still decide the
attempt (busy, no answer, ...), once, and only while it is the contact's latest attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import time
from typing import Any

import nats
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.campaigns import importer
from voicebus.campaigns.clock import FakeClock
from voicebus.campaigns.dialer import Dialer, DialerConfig
from voicebus.campaigns.outcomes import Ended, Outcomes
from voicebus.campaigns.publisher import Publisher
from voicebus.campaigns.store import Store
from voicebus.contracts import campaigns as api
from voicebus.contracts.events import EndReason
from voicebus.devkit.campaign.contacts import MONDAY_14_UTC
from voicebus.runtime import db as dbkit
from voicebus.runtime.provision import provision

pytestmark = pytest.mark.integration

NUMBERS = ["+442079460001", "+442079460002", "+442079460003"]


@pytest.fixture
async def parts(
    embedded_nats_factory: Callable[..., Any], database_url: str
) -> AsyncIterator[tuple[AsyncEngine, Store, Publisher]]:
    nc = await nats.connect(embedded_nats_factory().url)
    await provision(nc.jetstream())
    engine = dbkit.create_engine(database_url, "campaigns")
    yield engine, Store(engine), Publisher(nc.jetstream())
    await engine.dispose()
    await nc.drain()


async def _dialed(store: Store, publisher: Publisher, clock: FakeClock) -> None:
    all_day = {d: [api.TimeRange(start=time(0), end=time.max)] for d in api.Weekday}
    no_retry = api.RetryPolicy(busy=None, no_answer=None, failed=None, machine=None)
    spec = api.CampaignSpec(name="late", agent_id="demo", caller_ids=["+442079460999"],
                            windows=all_day, concurrency=10, pacing_cps=100,
                            retry=no_retry)  # fmt: skip
    campaign = await store.create("acme", spec, clock.now())
    body = ("phone\n" + "\n".join(NUMBERS) + "\n").encode()
    parsed = importer.parse_chunk(body, api.UploadFormat.CSV, 1, None, "GB")
    await store.upload("acme", campaign.campaign_id, "u1", parsed.rows, parsed.errors,
                       parsed.read, parsed.header, clock.now())  # fmt: skip
    await store.set_status("acme", campaign.campaign_id, [api.CampaignStatus.DRAFT],
                           api.CampaignStatus.RUNNING, clock.now())  # fmt: skip
    dialer = Dialer(store, publisher, clock, DialerConfig(instance_id="t1", source="campaigns/t1"))
    assert await dialer.tick() == len(NUMBERS)


async def _attempts(engine: AsyncEngine) -> dict[str, tuple[str, str, str, str]]:
    """phone → (attempt status, outcome, end reason, call id)."""
    async with engine.connect() as conn:
        rows = await conn.execute(text(
            "SELECT c.phone, a.status, a.outcome, a.end_reason, a.call_id FROM attempts a "
            "JOIN contacts c ON c.contact_id = a.contact_id"
        ))  # fmt: skip
        return {r.phone: (r.status, r.outcome, r.end_reason, r.call_id) for r in rows}


async def test_a_late_end_replaces_the_reapers_timeout_once(
    parts: tuple[AsyncEngine, Store, Publisher],
) -> None:
    engine, store, publisher = parts
    clock = FakeClock(MONDAY_14_UTC)
    await _dialed(store, publisher, clock)
    outcomes = Outcomes(store, publisher, clock, "campaigns/t1")
    # Every dialed attempt's lease runs out with no news: the reaper ends them as timeout.
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE attempts SET lease_until = now() - interval '1 second'"))
    assert await outcomes.reap() == len(NUMBERS)
    reaped = await _attempts(engine)
    assert {v[:3] for v in reaped.values()} == {("ended", "timeout", "timeout")}
    first, second, third = (reaped[n][3] for n in NUMBERS)

    # The real ends arrive: busy and no answer correct their attempts; a timeout is no news.
    late = [Ended("acme", first, EndReason.BUSY, None),
            Ended("acme", second, EndReason.NO_ANSWER, None),
            Ended("acme", third, EndReason.TIMEOUT, None)]  # fmt: skip
    assert await outcomes.ended_many(late) == 2
    corrected = await _attempts(engine)
    assert corrected[NUMBERS[0]][:3] == ("ended", "busy", "busy")
    assert corrected[NUMBERS[1]][:3] == ("ended", "no_answer", "no_answer")
    assert corrected[NUMBERS[2]][:3] == ("ended", "timeout", "timeout")
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT phone, outcome FROM contacts"))).all()
    contacts = {r.phone: r.outcome for r in rows}
    assert contacts == {NUMBERS[0]: "busy", NUMBERS[1]: "no_answer", NUMBERS[2]: "timeout"}
    async with engine.connect() as conn:
        outcome_events = (await conn.execute(text(
            "SELECT count(*) FROM outbox WHERE subject LIKE '%.attempt.outcome%'"
        ))).scalar_one()  # fmt: skip
    assert outcome_events == len(NUMBERS) + 2  # the reaper's three, then two corrections

    # A redelivery changes nothing, and neither does a late end once a newer attempt exists.
    assert await outcomes.ended_many(late) == 0
    async with engine.begin() as conn:
        await conn.execute(text(
            "UPDATE attempts SET outcome = 'timeout', end_reason = 'timeout' WHERE call_id = :c"
        ), {"c": first})  # fmt: skip
        await conn.execute(text(
            "UPDATE contacts SET last_call_id = 'a-newer-attempt' WHERE phone = :p"
        ), {"p": NUMBERS[0]})  # fmt: skip
    assert await outcomes.ended_many([Ended("acme", first, EndReason.BUSY, None)]) == 0
