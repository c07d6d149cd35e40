"""Chaos: PostgreSQL stopped for a minute while events, live calls and a campaign flow.

Every service runs as its own process (gateway, media, orchestrator, recorder, audit,
campaigns) on a private NATS and a private PostgreSQL that this test stops for
``VB_CHAOS_OUTAGE_S`` (60) seconds. Meanwhile:

- ``VB_CHAOS_EVENTS`` (10,000) call events of 1,000 synthetic calls are published;
- ``VB_CHAOS_CALLS`` (4) simulated Twilio callers talk to the scripted demo agent
  through the real gateway, and hang up;
- a campaign's calls, dialed through the gateway and the stand-in Twilio API just
  before the outage, ring and end (busy, no answer, failed) during it.

After PostgreSQL is back: every event is stored exactly once (none lost, none twice),
every campaign attempt has the outcome its callee gave (busy, no answer, failed: the
gateway took every status callback, none ends as the reaper's ``timeout``) and the
campaign completes, every live call
ended and was recorded (one ``recording.ready``) and its events are stored and
chained, and nothing was set aside as a dead letter. The gateway answers ready in the
middle of the outage. The figures are printed (-s).
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import time as clock_time
from typing import Any, Final

import asyncpg
import httpx
import phonenumbers
import pytest
from nats.aio.client import Client

from voicebus.contracts import campaigns as api
from voicebus.contracts import streams
from voicebus.contracts.chains import CHAINS_VERIFY, ChainReport, VerifyChains
from voicebus.contracts.events import (
    AttemptOutcome,
    AttemptOutcomeRecorded,
    CallEnded,
    CallInitiated,
    CallInitiatedData,
    EndReason,
    Envelope,
    RecordingReady,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.campaign.client import CampaignClient
from voicebus.devkit.campaign.contacts import wait_for
from voicebus.devkit.carriers.base import Behaviour, behaviour_for
from voicebus.devkit.carriers.twilio import TwilioCarrier
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.embedded_postgres import EmbeddedPostgres
from voicebus.devkit.nats_accounts import NatsAccounts
from voicebus.devkit.schemas import migrate_all

from .conftest import Cluster, events_of

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(900)]

OUTAGE_S: Final = float(os.environ.get("VB_CHAOS_OUTAGE_S", "60"))
CALLS: Final = int(os.environ.get("VB_CHAOS_CALLS", "4"))
EVENTS: Final = int(os.environ.get("VB_CHAOS_EVENTS", "10000"))
PER_CALL: Final = 10
TENANT: Final = "default"  # the gateway's default tenant dials with its environment account
TWILIO_SID: Final = "AC" + "2" * 32
CALLER_ID: Final = "+14155550100"
AGENT: Final = "demo-scripted"


OUTCOME_OF: Final = {
    Behaviour.BUSY: AttemptOutcome.BUSY,
    Behaviour.NO_ANSWER: AttemptOutcome.NO_ANSWER,
    Behaviour.FAIL: AttemptOutcome.FAILED,
}
"""The stand-in callee's behaviour → the attempt's outcome (never ``timeout``)."""
END_OF: Final = {
    AttemptOutcome.BUSY: EndReason.BUSY.value,
    AttemptOutcome.NO_ANSWER: EndReason.NO_ANSWER.value,
    AttemptOutcome.FAILED: EndReason.FAILED.value,
}
"""An attempt's outcome → the reason of the ``call.ended`` the gateway publishes for it."""


def _contacts() -> list[str]:
    """London numbers the stand-in makes busy (0002), unanswered (0003) or failed (0004)."""
    out: list[str] = []
    for block in range(100, 999):
        for suffix in ("0002", "0003", "0004"):
            number = f"+44207{block}{suffix}"
            if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                out.append(number)
        if len(out) >= 30:
            return out[:30]
    return out


def _synthetic() -> list[Envelope]:
    """``EVENTS`` events of calls nobody serves: only audit (and campaigns) consume them."""
    out: list[Envelope] = []
    for _ in range(EVENTS // PER_CALL):
        env = {"tenant_id": "chaos", "call_id": new_id(), "source": "chaos/1"}
        out.append(CallInitiated(**env, data=CallInitiatedData(
            direction="inbound", provider="twilio", agent_id="demo")))  # fmt: skip
        for i in range(PER_CALL - 2):
            data = TranscriptFinalData(utterance_id=f"u{i}", text=f"line {i}", start_ms=i,
                                       end_ms=i + 1)  # fmt: skip
            out.append(TranscriptFinal(**env, data=data))
        out.append(CallEnded(**env, data={"reason": "caller_hangup", "duration_s": 1.0}))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this module only: it is stopped and started again."""
    server = EmbeddedPostgres(data_dir=tmp_path_factory.mktemp("pg") / "data", durable=True)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
async def carrier() -> AsyncIterator[TwilioCarrier]:
    """The stand-in Twilio API: each campaign call rings 2 × 6 s before its outcome."""
    stand_in = TwilioCarrier(account_sid=TWILIO_SID, auth_token=DEV_TWILIO_AUTH_TOKEN,
                             gateway_url="http://127.0.0.1:1", ring_s=6.0)  # fmt: skip
    yield stand_in
    await stand_in.stop()


@pytest.fixture(scope="module")
async def chaos(
    tmp_path_factory: pytest.TempPathFactory,
    module_nats: EmbeddedNats,
    module_accounts: NatsAccounts,
    postgres: EmbeddedPostgres,
    carrier: TwilioCarrier,
) -> AsyncIterator[Cluster]:
    url = await postgres.create_database("chaos")
    await migrate_all(url)
    env = {
        "VB_GATEWAY_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "VB_GATEWAY_TWILIO_API_BASE_URL": carrier.base_url,
        "VB_GATEWAY_TWILIO_CALLER_ID": CALLER_ID,
        "VB_CAMPAIGNS_TICK_S": "0.1",
        "VB_CAMPAIGNS_REAP_INTERVAL_S": "1",
        "VB_LOG_LEVEL": "WARNING",
    }
    cluster = Cluster(tmp_path_factory.mktemp("chaos"), module_nats, url, module_accounts, env)
    try:
        yield cluster
    finally:
        await cluster.close()


async def _publish_over(nc: Client, events: list[Envelope], seconds: float) -> float:
    """Publish ``events`` evenly over ``seconds`` (acks awaited); returns when done."""
    js = nc.jetstream()
    started = time.monotonic()
    step = 100
    for i in range(0, len(events), step):
        acks = [await js.publish_async(e.subject, e.to_bytes(), headers={"Nats-Msg-Id": e.id})
                for e in events[i : i + step]]  # fmt: skip
        await asyncio.gather(*acks)
        due = started + seconds * (i + step) / len(events)
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    return time.monotonic() - started


async def _live_call(gateway_url: str, delay_s: float) -> dict[str, Any]:
    await asyncio.sleep(delay_s)
    async with TwilioCaller(gateway_url, DEV_TWILIO_AUTH_TOKEN, AGENT) as call:
        call_id = call.call_id
        assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=120)  # the greeting
        await call.say_text("Hi, where is my order 1234?")
        assert await call.wait_for_agent_audio(timeout=120)
        assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=120)
        await call.say_text("Thanks, bye.")
        closed = await call.wait_closed(timeout=120)
    result = await call.hang_up()
    return {"call_id": call_id, "closed": closed, "errors": result.protocol_errors}


async def _count(db: asyncpg.Connection, sql: str, *args: Any) -> int:
    return int(await db.fetchval(sql, *args))


async def test_a_postgres_outage_loses_nothing(
    chaos: Cluster, postgres: EmbeddedPostgres, carrier: TwilioCarrier
) -> None:
    await chaos.ensure({"gateway": 1, "media": 1, "orchestrator": 1, "recorder": 1,
                        "audit": 1, "campaigns": 1})  # fmt: skip
    gateway = chaos.running("gateway")[0]
    carrier.gateway_url = carrier.public_url = gateway.url
    await carrier.start()
    synthetic = _synthetic()
    numbers = _contacts()
    async with chaos.client() as nc:
        client = CampaignClient(nc, TENANT)
        all_day = {d: [api.TimeRange(start=clock_time(0), end=clock_time.max)] for d in api.Weekday}
        spec = api.CampaignSpec(
            name="chaos", agent_id="demo", caller_ids=[CALLER_ID], windows=all_day,
            concurrency=30, pacing_cps=2,
            retry=api.RetryPolicy(busy=None, no_answer=None, failed=None, machine=None),
        )  # fmt: skip
        campaign = await client.create(spec)
        body = "phone\n" + "\n".join(numbers) + "\n"
        await client.upload(campaign.campaign_id, io.BytesIO(body.encode()))
        await client.move("start", campaign.campaign_id)

        async def some_dialed() -> bool:
            return len(carrier.calls) >= 8

        await wait_for(some_dialed, timeout=120, what="campaign calls ringing")

        calls = [asyncio.create_task(_live_call(gateway.url, 2.0 * i)) for i in range(CALLS)]
        publishing = asyncio.create_task(_publish_over(nc, synthetic, OUTAGE_S * 0.8))
        await asyncio.sleep(2.0)
        down_at = time.monotonic()
        await asyncio.to_thread(postgres.stop)
        dialed_before = len(carrier.calls)
        await asyncio.sleep(OUTAGE_S / 2)
        # The gateway keeps no database: it stays ready (live calls never touch PostgreSQL).
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as http:
            gateway_ready = (await http.get("/readyz")).status_code
        await asyncio.sleep(OUTAGE_S / 2)
        await asyncio.to_thread(postgres.start)
        outage_s = time.monotonic() - down_at

        published_s = await publishing
        results = await asyncio.gather(*calls, return_exceptions=True)

        async def completed() -> bool:
            return (await client.get(campaign.campaign_id)).status is api.CampaignStatus.COMPLETED

        await wait_for(completed, timeout=300, what="the campaign to complete")
        live = [r for r in results if isinstance(r, dict)]
        failed_calls = [r for r in results if isinstance(r, BaseException)]
        recorded: dict[str, int] = {}
        call_events: dict[str, list[str]] = {}
        for r in live:
            async with asyncio.timeout(120):
                while True:
                    events = await events_of(nc, r["call_id"])
                    ready = [e for e in events if isinstance(e, RecordingReady)]
                    if ready and any(isinstance(e, CallEnded) for e in events):
                        break
                    await asyncio.sleep(1.0)
            await asyncio.sleep(1.0)
            events = await events_of(nc, r["call_id"])
            recorded[r["call_id"]] = sum(isinstance(e, RecordingReady) for e in events)
            call_events[r["call_id"]] = [e.id for e in events]
        letters = (await nc.jetstream().stream_info(streams.DEAD_LETTERS.name)).state.messages

        db = await asyncpg.connect(chaos.database_url)
        try:
            wanted = [e.id for e in synthetic]
            every_call_event = [i for ids in call_events.values() for i in ids]
            everything = wanted + every_call_event
            stored_sql = "SELECT count(*) FROM audit.call_events WHERE id = ANY($1)"
            async with asyncio.timeout(300):
                while await _count(db, stored_sql, everything) < len(everything):
                    await asyncio.sleep(1.0)
            await asyncio.sleep(3.0)  # anything extra would be stored by now
            rows = await _count(
                db, "SELECT count(*) FROM audit.call_events WHERE tenant_id = 'chaos'"
            )
            distinct = await _count(
                db, "SELECT count(DISTINCT id) FROM audit.call_events WHERE tenant_id = 'chaos'"
            )
            stored_call_events = await _count(
                db, "SELECT count(*) FROM audit.call_events WHERE id = ANY($1)", every_call_event
            )
            ended_calls = await _count(
                db, "SELECT count(*) FROM audit.calls WHERE call_id = ANY($1) AND status = 'ended'",
                list(call_events),
            )  # fmt: skip
            attempt_rows = await db.fetch(
                "SELECT a.attempt_id, a.status, a.outcome, c.phone FROM campaigns.attempts a "
                "JOIN campaigns.contacts c USING (contact_id) WHERE a.campaign_id = $1",
                campaign.campaign_id,
            )
            contacts_done = await _count(
                db, "SELECT count(*) FROM campaigns.contacts WHERE campaign_id = $1 "
                "AND state = 'done'", campaign.campaign_id,
            )  # fmt: skip
            outbox_left = await _count(db, "SELECT count(*) FROM campaigns.outbox")
        finally:
            await db.close()
        decided: dict[str, list[str]] = {}  # each attempt's attempt.outcome events, in order
        ended_reasons: dict[str, list[str]] = {}  # the gateway's call.ended of each attempt
        for row in attempt_rows:
            of_attempt = await events_of(nc, row["attempt_id"])  # its call id is the attempt id
            decided[row["attempt_id"]] = [
                e.data.outcome.value for e in of_attempt if isinstance(e, AttemptOutcomeRecorded)
            ]
            ended_reasons[row["attempt_id"]] = [
                e.data.reason.value for e in of_attempt if isinstance(e, CallEnded)
            ]
        chains: list[bool] = []
        for call_id in call_events:
            request = VerifyChains(tenant_id=TENANT, call_id=call_id)
            reply = await nc.request(CHAINS_VERIFY, request.model_dump_json().encode(), timeout=30)
            chains += [r.ok for r in ChainReport.model_validate_json(reply.data).results]

    lost = len(synthetic) - distinct
    outcomes = Counter(r["outcome"] for r in attempt_rows)
    outcome_of = {r["attempt_id"]: r["outcome"] for r in attempt_rows}
    # What the stand-in's callee did, as the campaign should count it (not its reaper's
    # ``timeout``): the gateway must have taken every status callback of those calls.
    expected = {r["attempt_id"]: OUTCOME_OF[behaviour_for(r["phone"])] for r in attempt_rows}
    ends_expected = {a: [END_OF[o]] for a, o in expected.items()}
    timed_out = [a for a in expected if outcome_of[a] == AttemptOutcome.TIMEOUT]
    outcome_events = sum(len(v) for v in decided.values())
    # A call's end that waited out the outage behind its attempt's lease is applied after
    # the reaper's timeout, and corrects it: a second attempt.outcome for that attempt.
    corrected = sum(1 for v in decided.values() if v[:1] == ["timeout"] and len(v) == 2)
    callbacks = Counter(status for c in carrier.calls.values() for _, status in c.posted)
    print(
        f"\nchaos: PostgreSQL down {outage_s:.0f} s; {len(synthetic)} events published over "
        f"{published_s:.0f} s: {distinct} stored, {rows - distinct} duplicates, {lost} lost; "
        f"live calls: {len(live)} of {CALLS} completed ({len(failed_calls)} failed), "
        f"{sum(1 for n in recorded.values() if n == 1)} recorded once, "
        f"{stored_call_events} of their {sum(len(v) for v in call_events.values())} events "
        f"stored; campaign: {len(attempt_rows)} attempts ({dialed_before} dialed before the "
        f"outage), {sum(1 for r in attempt_rows if r['outcome'])} outcomes applied "
        f"{dict(outcomes)}, {outcome_events} attempt.outcome events ({corrected} correcting "
        f"the reaper's timeout), "
        f"{sum(len(v) for v in ended_reasons.values())} call.ended stored; carrier "
        f"callbacks answered {dict(callbacks)}; dead letters: {letters}"
    )
    assert gateway_ready == 200
    assert failed_calls == [], failed_calls
    assert (rows, distinct, lost) == (len(synthetic), len(synthetic), 0)
    assert all(r["closed"] and not r["errors"] for r in live), live
    assert recorded == {call_id: 1 for call_id in call_events}
    assert stored_call_events == sum(len(v) for v in call_events.values())
    assert ended_calls == len(call_events)
    assert all(chains)
    assert len(chains) == len(call_events)
    assert len(attempt_rows) == len(numbers)
    assert all(r["status"] == "ended" and r["outcome"] for r in attempt_rows), attempt_rows
    assert set(callbacks) == {200}, callbacks  # no callback refused or unanswered
    assert all(c.error is None for c in carrier.calls.values())
    # The gateway published each call's end as the callee gave it (once)...
    assert ended_reasons == ends_expected
    # ... and the campaign counted that, not its reaper's timeout.
    assert outcome_of == expected, f"ended as timeout although call.ended is stored: {timed_out}"
    assert contacts_done == len(numbers)
    assert {a: v[-1] for a, v in decided.items()} == {a: o.value for a, o in expected.items()}
    assert all(len(v) == 1 or (len(v) == 2 and v[0] == "timeout") for v in decided.values())
    assert outbox_left == 0
    assert letters == 0
