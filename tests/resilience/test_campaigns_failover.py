"""Two campaigns instances dial one campaign; one is killed with SIGKILL mid-run.

The survivor finishes the campaign: no attempt is dialed twice (the simulated
provider sees every call id once; the database holds one attempt per contact
and attempt number), every contact is dialed exactly as often as its callee's
behaviour and the retry policy say, and nothing is left claimed, dialing or
pending.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from datetime import time

import asyncpg
import pytest

from voicebus.contracts import campaigns as api
from voicebus.devkit.campaign.client import CampaignClient
from voicebus.devkit.campaign.contacts import wait_for
from voicebus.devkit.campaign.simulator import Callee, SimulatedProvider, by_last_digit

from .conftest import Cluster

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(300)]

CONTACTS = 400
EXPECTED = {
    Callee.ANSWER: 1,
    Callee.BUSY: 2,
    Callee.NO_ANSWER: 2,
    Callee.FAIL: 2,
    Callee.MACHINE: 1,
}


def _numbers() -> list[str]:
    # London numbers, so the real clock is always inside an all-day window (no TCPA bound).
    return [f"+44207946{i:04d}" for i in range(CONTACTS)]


def _spec() -> api.CampaignSpec:
    all_day = {d: [api.TimeRange(start=time(0), end=time.max)] for d in api.Weekday}
    retry = api.RetryRule(max_attempts=2, delay_s=1)
    return api.CampaignSpec(
        name="failover",
        agent_id="demo",
        caller_ids=["+442079460999"],
        windows=all_day,
        concurrency=20,
        pacing_cps=60,
        retry=api.RetryPolicy(busy=retry, no_answer=retry, failed=retry, machine=None),
    )


async def test_a_killed_instance_leaves_no_double_dial_and_no_stuck_contact(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VB_CAMPAIGNS_CLAIM_LEASE_S", "3")
    monkeypatch.setenv("VB_CAMPAIGNS_DIAL_GRACE_S", "20")
    monkeypatch.setenv("VB_CAMPAIGNS_REAP_INTERVAL_S", "0.5")
    monkeypatch.setenv("VB_CAMPAIGNS_TICK_S", "0.05")
    first = await cluster.start("campaigns", "campaigns-a")
    await cluster.start("campaigns", "campaigns-b")
    async with cluster.client() as nc:
        sim = SimulatedProvider(nc, talk_s=0.3)
        await sim.start()
        client = CampaignClient(nc, "acme")
        try:
            campaign = await client.create(_spec())
            body = "phone,name\n" + "".join(f"{n},P{i}\n" for i, n in enumerate(_numbers()))
            await client.upload(campaign.campaign_id, io.BytesIO(body.encode()))
            await client.move("start", campaign.campaign_id)

            async def a_third_dialed() -> bool:
                return len(sim.dials) >= CONTACTS // 3

            await wait_for(a_third_dialed, timeout=120, what="a third of the contacts dialed")
            cluster.kill(first)

            async def completed() -> bool:
                found = await client.get(campaign.campaign_id)
                return found.status is api.CampaignStatus.COMPLETED

            await wait_for(completed, timeout=200, what="the survivor to complete the campaign")
        finally:
            await sim.stop()
        await asyncio.sleep(1.0)  # a late duplicate, if any, would arrive now

    assert sim.double_dials == {}
    dialed = Counter(d.to_number for d in sim.dials)
    for number in _numbers():
        assert dialed[number] == EXPECTED[by_last_digit(number)], number
    db = await asyncpg.connect(cluster.database_url)
    try:
        attempts = await db.fetchval(
            "SELECT count(*) FROM campaigns.attempts WHERE campaign_id = $1",
            campaign.campaign_id,
        )
        live = await db.fetchval(
            "SELECT count(*) FROM campaigns.attempts WHERE campaign_id = $1 AND status <> 'ended'",
            campaign.campaign_id,
        )
        by_instance = dict(
            await db.fetch(
                "SELECT claimed_by, count(*) FROM campaigns.attempts WHERE campaign_id = $1 "
                "GROUP BY claimed_by",
                campaign.campaign_id,
            )
        )
        states = dict(
            await db.fetch(
                "SELECT state, count(*) FROM campaigns.contacts WHERE campaign_id = $1 "
                "GROUP BY state",
                campaign.campaign_id,
            )
        )
    finally:
        await db.close()
    assert attempts == len(sim.dials)
    assert live == 0
    assert states == {"done": CONTACTS}
    # Both instances dialed (the decisions were shared before the kill).
    assert len(by_instance) == 2, by_instance
