"""A dial the gateway refuses at the tenant's concurrent-call limit is no attempt of the
contact: on real NATS and PostgreSQL, the contact waits and is dialed again, and a retry
policy that allows a single failed attempt still reaches the callee."""

from __future__ import annotations

import io
from datetime import time, timedelta

import asyncpg
import pytest

from voicebus.campaigns.clock import FakeClock
from voicebus.campaigns.outcomes import CAPACITY_RETRY_S
from voicebus.contracts import campaigns as api
from voicebus.devkit.campaign.client import CampaignClient
from voicebus.devkit.campaign.contacts import wait_for
from voicebus.devkit.campaign.simulator import Callee, SimulatedProvider
from voicebus.runtime.service import Service

pytestmark = pytest.mark.integration

NUMBERS = ["+12125550101", "+12125550102", "+12125550103"]


def _spec() -> api.CampaignSpec:
    every_day = {d: [api.TimeRange(start=time(7), end=time(22))] for d in api.Weekday}
    return api.CampaignSpec(
        name="limited", agent_id="demo", caller_ids=["+14155550100"], windows=every_day,
        concurrency=5, pacing_cps=100,
        retry=api.RetryPolicy(failed=api.RetryRule(max_attempts=1, delay_s=60), max_attempts=1),
    )  # fmt: skip


async def test_a_dial_refused_at_the_concurrent_call_limit_is_retried_not_counted(
    stack: tuple[Service, FakeClock, SimulatedProvider, CampaignClient], database_url: str
) -> None:
    _service, clock, sim, client = stack
    first_dials: set[str] = set()

    def at_capacity_once(number: str) -> Callee:
        if number in first_dials:
            return Callee.ANSWER
        first_dials.add(number)
        return Callee.AT_CAPACITY

    sim.behaviour = at_capacity_once
    campaign = await client.create(_spec())
    csv = "phone\n" + "\n".join(NUMBERS) + "\n"
    await client.upload(campaign.campaign_id, io.BytesIO(csv.encode()))
    await client.move("start", campaign.campaign_id)
    db = await asyncpg.connect(database_url)
    try:

        async def contacts(state: str) -> list[asyncpg.Record]:
            return list(await db.fetch(
                "SELECT c.attempts, c.next_at, (SELECT count(*) FROM campaigns.attempts a "
                "WHERE a.contact_id = c.contact_id) AS rows FROM campaigns.contacts c "
                "WHERE c.campaign_id = $1 AND c.state = $2", campaign.campaign_id, state,
            ))  # fmt: skip

        async def refused_and_waiting() -> bool:
            rows = await contacts("pending")
            return len(sim.dials) == len(NUMBERS) and len(rows) == len(NUMBERS)

        await wait_for(refused_and_waiting, timeout=30, what="refused dials to be put back")
        for row in await contacts("pending"):
            assert (row["attempts"], row["rows"]) == (0, 0)  # no attempt counted or kept
            assert row["next_at"] == clock.now() + timedelta(seconds=CAPACITY_RETRY_S)

        clock.set(clock.now() + timedelta(seconds=CAPACITY_RETRY_S))

        async def all_answered() -> bool:
            return len(await contacts("done")) == len(NUMBERS)

        await wait_for(all_answered, timeout=30, what="the contacts to be dialed again")
        assert len(sim.dials) == 2 * len(NUMBERS)
        outcomes = await db.fetch(
            "SELECT attempt_no, outcome FROM campaigns.attempts WHERE campaign_id = $1",
            campaign.campaign_id,
        )
        assert sorted((r["attempt_no"], r["outcome"]) for r in outcomes) == [(1, "answered")] * 3
    finally:
        await db.close()
