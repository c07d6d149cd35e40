"""A 1,000-contact campaign at concurrency 20 on real NATS and PostgreSQL, driven by a fake clock.

The simulated provider plays the callees by last digit (answer, busy, no
answer, fail, machine). The test checks that every eligible contact is dialed
exactly as often as the retry policy says, DNC'd numbers never, out-of-window
numbers only inside their window in every zone of the number, that no more
than 20 calls ever ran at once, and that the report adds up.
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import asyncpg
import phonenumbers
import pytest
from phonenumbers import timezone as pn_timezone
from prometheus_client import REGISTRY

from voicebus.campaigns.clock import FakeClock
from voicebus.contracts import campaigns as api
from voicebus.contracts.events import DncRequested, DncRequestedData
from voicebus.devkit.campaign.client import CampaignClient
from voicebus.devkit.campaign.contacts import MONDAY_14_UTC, Person, people, wait_for
from voicebus.devkit.campaign.simulator import Callee, SimulatedProvider, by_last_digit
from voicebus.runtime.service import Service

pytestmark = pytest.mark.integration

CONTACTS = 1000
EXPECTED_DIALS = {
    Callee.ANSWER: 1,
    Callee.BUSY: 3,
    Callee.NO_ANSWER: 2,
    Callee.FAIL: 2,
    Callee.MACHINE: 1,
}
TOKYO_OPENS = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # 07:00 in Tokyo
LA_OPENS = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # 08:00 in Los Angeles (TCPA, not 07:00)


def spec() -> api.CampaignSpec:
    every_day = {d: [api.TimeRange(start=time(7), end=time(22))] for d in api.Weekday}
    return api.CampaignSpec(
        name="renewals",
        agent_id="demo",
        caller_ids=["+14155550100", "+14155550101"],
        windows=every_day,
        concurrency=20,
        pacing_cps=500,
        retry=api.RetryPolicy(
            busy=api.RetryRule(max_attempts=3, delay_s=300),
            no_answer=api.RetryRule(max_attempts=2, delay_s=600),
            failed=api.RetryRule(max_attempts=2, delay_s=60),
            machine=None,
            max_attempts=5,
        ),
        amd=api.AmdPolicy.HANG_UP,
    )


def csv_file(persons: list[Person]) -> bytes:
    """The contact file: BOM, semicolons, duplicates in another format, and bad lines."""
    lines = ["first name;Phone;plan"]
    lines += [f"Person {i};{p.number};gold" for i, p in enumerate(persons)]
    lines += [f"Dup {i};{p.number[:5]} {p.number[5:]};silver" for i, p in enumerate(persons[:10])]
    lines += ["Bad;12;x", "NoPhone;;x", "Short;+12125550199"]
    body = ("\n".join(lines) + "\n").encode()
    return b"\xef\xbb\xbf" + body + b"Broken \xff;+12125550188;x\n"


async def _pending_due(db: asyncpg.Connection, campaign_id: str, now: datetime) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM campaigns.contacts WHERE campaign_id = $1 AND "
            "(state = 'dialing' OR (state = 'pending' AND next_at <= $2))",
            campaign_id,
            now,
        )
    )


async def _drive(
    db: asyncpg.Connection, clock: FakeClock, client: CampaignClient, campaign_id: str
) -> None:
    """Let each moment's dials finish, then jump the clock to the next planned attempt."""
    for _ in range(200):

        async def quiet() -> bool:
            progress = await client.progress(campaign_id)
            due = await _pending_due(db, campaign_id, clock.now())
            return progress.in_flight == 0 and due == 0

        await wait_for(quiet, timeout=60, what="dials of this moment to finish")
        following = await db.fetchval(
            "SELECT min(next_at) FROM campaigns.contacts WHERE campaign_id = $1 "
            "AND state = 'pending'",
            campaign_id,
        )
        if following is None:
            return
        clock.set(following)
    raise AssertionError("the campaign did not finish in 200 clock steps")


def _decisions(decision: str) -> float:
    value = REGISTRY.get_sample_value(
        "voicebus_campaigns_dial_decisions_total", {"decision": decision}
    )
    return value or 0.0


def _inside(when: datetime, number: str) -> bool:
    """The oracle: the number's zones straight from phonenumbers."""
    parsed = phonenumbers.parse(number)
    zones = pn_timezone.time_zones_for_number(parsed)
    us = phonenumbers.region_code_for_number(parsed) == "US"
    for zone in zones:
        local = when.astimezone(ZoneInfo(zone)).time()
        start, end = (time(8), time(21)) if us else (time(7), time(22))
        if not start <= local < end:
            return False
    return True


async def test_a_1000_contact_campaign_dials_exactly_as_the_rules_say(
    stack: tuple[Service, FakeClock, SimulatedProvider, CampaignClient], database_url: str
) -> None:
    service, clock, sim, client = stack
    decisions_before = {d: _decisions(d) for d in ("dialed", "dnc", "window")}
    persons = people(CONTACTS)
    area_of = {p.number: p.area for p in persons}
    tenant_dnc = [p.number for p in persons[:40]]
    late_dnc = [p.number for p in persons if p.area == "tokyo"][20:30]
    await client.dnc("add", tenant_dnc)

    campaign = await client.create(spec())
    report = await client.upload(
        campaign.campaign_id, io.BytesIO(csv_file(persons)), chunk_bytes=8192
    )
    assert report.rows == CONTACTS + 10 + 4
    assert (report.loaded, report.merged, report.dnc) == (CONTACTS, 10, 40)
    errors = {e.line: e.reason for e in report.errors}
    first_bad = CONTACTS + 10 + 2
    assert errors == {
        first_bad: "not a valid phone number",
        first_bad + 1: "missing column phone",
        first_bad + 2: "expected 3 columns, found 2",
        first_bad + 3: "not valid UTF-8",
    }

    # A callee asks not to be called (the orchestrator's dnc.requested), before their window opens.
    for number in late_dnc:
        request = DncRequested(tenant_id="acme", call_id="c-inbound", source="test/1",
                               data=DncRequestedData(to_number=number))  # fmt: skip
        await client.nc.jetstream().publish(request.subject, request.to_bytes())
    db = await asyncpg.connect(database_url)
    try:

        async def requested_blocked() -> bool:
            n = await db.fetchval(
                "SELECT count(*) FROM campaigns.contacts WHERE state = 'dnc' AND phone = ANY($1)",
                late_dnc,
            )
            return int(n) == len(late_dnc)

        await wait_for(requested_blocked, what="dnc.requested to block the numbers")

        await client.move("start", campaign.campaign_id)
        await _drive(db, clock, client, campaign.campaign_id)

        async def completed() -> bool:
            return (await client.get(campaign.campaign_id)).status is api.CampaignStatus.COMPLETED

        await wait_for(completed, what="the campaign to complete")
        attempts = await db.fetch(
            "SELECT a.*, c.phone FROM campaigns.attempts a "
            "JOIN campaigns.contacts c USING (contact_id) WHERE a.campaign_id = $1",
            campaign.campaign_id,
        )
    finally:
        await db.close()

    # Exactly the right number of dials, never a DNC'd number, never the same attempt twice.
    assert sim.double_dials == {}
    dialed = Counter(d.to_number for d in sim.dials)
    blocked = set(tenant_dnc) | set(late_dnc)
    for p in persons:
        want = 0 if p.number in blocked else EXPECTED_DIALS[by_last_digit(p.number)]
        assert dialed[p.number] == want, (p.area, by_last_digit(p.number), dialed[p.number])
    assert len(attempts) == len(sim.dials)
    assert sim.max_active <= 20

    # Only inside the window, in every zone of the number (US: 08:00-21:00 whatever asked).
    for a in attempts:
        assert _inside(a["dialed_at"], a["phone"]), (area_of[a["phone"]], a["dialed_at"])
    first_dial = {
        a["phone"]: a["dialed_at"] for a in sorted(attempts, key=lambda a: a["dialed_at"])
    }
    # Nobody in Tokyo (23:00) or on the west coast (06:00, TCPA 08:00) was dialed at the start.
    assert min(first_dial[p] for p in first_dial if area_of[p] == "tokyo") >= TOKYO_OPENS
    assert min(first_dial[p] for p in first_dial if area_of[p] == "la") >= LA_OPENS
    assert min(first_dial[p] for p in first_dial if area_of[p] == "ny") == MONDAY_14_UTC

    # The report adds up.
    rows = [row async for row in client.report(campaign.campaign_id, page=300)]
    assert len(rows) == CONTACTS
    assert sum(r.attempts for r in rows) == len(attempts)
    states = Counter(r.state for r in rows)
    assert states == {"done": CONTACTS - len(blocked), "dnc": len(blocked)}
    final = Counter(r.outcome for r in rows if r.state == "done")
    eligible = [p for p in persons if p.number not in blocked]
    behaviours = Counter(by_last_digit(p.number) for p in eligible)
    assert final["answered"] == behaviours[Callee.ANSWER]
    assert final["busy"] == behaviours[Callee.BUSY]
    assert final["no_answer"] == behaviours[Callee.NO_ANSWER]
    assert final["failed"] == behaviours[Callee.FAIL]
    assert final["machine"] == behaviours[Callee.MACHINE]
    progress = await client.progress(campaign.campaign_id)
    assert progress.dialed == len(attempts)
    assert progress.in_flight == 0

    # Every decision is on the event stream.
    info = await client.nc.jetstream().stream_info("VB_EVENTS", subjects_filter="vb.evt.acme.>")
    by_type = Counter(".".join(s.split(".")[4:]) for s in (info.state.subjects or {}))
    counts = Counter[str]()
    for subject, n in (info.state.subjects or {}).items():
        counts[".".join(subject.split(".")[4:])] += n
    assert counts["attempt.dialed"] == len(attempts)
    assert counts["attempt.outcome"] == len(attempts)
    assert counts["dnc.checked"] >= len(attempts) + 40
    assert counts["window.checked"] > len(attempts)  # deferrals too
    assert counts["campaign.progress"] >= 1
    # The dialer's metric counts the same decisions (the service runs in this process).
    decided = {d: _decisions(d) - before for d, before in decisions_before.items()}
    assert decided["dialed"] == len(attempts)
    # Each decision checks DNC once; numbers on a list at upload were checked then.
    assert sum(decided.values()) + report.dnc == counts["dnc.checked"]
    assert decided["window"] > 0
    assert by_type
    assert service.ready
