"""Two campaigns instances dial one campaign; one is killed with SIGKILL mid-run.

The survivor finishes the campaign: no attempt is dialed twice (the simulated
provider sees every call id once; the database holds one attempt per contact
and attempt number), every contact is dialed exactly as often as its callee's
behaviour and the retry policy say, and nothing is left claimed, dialing or
pending.

Requests to the queue group survive the dead member. This once failed on a
loaded machine: the first ``campaigns.get`` after the kill was routed to the
dead instance (the server had not yet seen its connection close) and the client
waited its whole 30 s. Here that moment is made certain instead of left to
chance: the instance is frozen (SIGSTOP), reads are sent until the server's
monitoring shows one routed to the frozen member, and only then is it killed.
Every read must still be answered, by the survivor, within its budget.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import urllib.request
from collections import Counter
from datetime import time
from typing import Any

import asyncpg
import pytest

from voicebus.contracts import campaigns as api
from voicebus.devkit.campaign.client import CampaignClient
from voicebus.devkit.campaign.contacts import wait_for
from voicebus.devkit.campaign.simulator import Callee, SimulatedProvider, by_last_digit

from .conftest import Cluster, Proc

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


def _monitor(cluster: Cluster, path: str) -> Any:
    with urllib.request.urlopen(f"{cluster.nats.monitor_url}{path}", timeout=5) as reply:  # noqa: S310
        return json.load(reply)


def _reads_taken(cluster: Cluster, proc: Proc) -> int:
    """``campaigns.get`` requests the server routed to ``proc``'s connection so far."""
    name = f"campaigns/{proc.instance}"
    conns = _monitor(cluster, "/connz?limit=1000")["connections"]
    cids = {c["cid"] for c in conns if c.get("name") == name}
    subs = _monitor(cluster, f"/subsz?subs=1&limit=10000&test={api.CAMPAIGNS_GET}")
    return sum(int(s["msgs"]) for s in subs.get("subscriptions_list", []) if s["cid"] in cids)


async def _kill_while_holding_reads(
    cluster: Cluster, victim: Proc, client: CampaignClient, campaign_id: str
) -> list[api.Campaign]:
    """Freeze ``victim``, ask until it holds a read, kill it: every read is answered."""
    assert victim.popen is not None
    before = await asyncio.to_thread(_reads_taken, cluster, victim)
    os.kill(victim.popen.pid, signal.SIGSTOP)
    asks: list[asyncio.Task[api.Campaign]] = []
    try:
        async with asyncio.timeout(60):
            while await asyncio.to_thread(_reads_taken, cluster, victim) == before:
                asks.append(asyncio.create_task(client.get(campaign_id)))
                await asyncio.sleep(0.05)
    finally:
        cluster.kill(victim)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answers = await asyncio.gather(*asks)  # a read lost with the victim would raise here
    took = loop.time() - started
    assert took < client.timeout_s
    print(f"\ncampaigns: {len(asks)} reads in flight at SIGKILL, all answered {took:.1f} s later")
    return answers


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
            answers = await _kill_while_holding_reads(cluster, first, client, campaign.campaign_id)
            assert {a.campaign_id for a in answers} == {campaign.campaign_id}

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
