"""Audit catches up on a backlog exactly once, even when it is killed half-way.

Audit's durable consumer ``audit-call-events`` is created by a first start; audit
is stopped; 10,000 call events are published; audit starts again and stores
every one of them once. It is then killed with SIGKILL in the middle of the
catch-up and started again: still exactly 10,000 rows, no duplicate.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from nats.aio.client import Client

from voicebus.contracts import subjects
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Envelope,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.streams import EVENTS

from .conftest import Cluster

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(240)]

CALLS = 1000
PER_CALL = 10  # call.started, 8 transcripts, call.ended
TOTAL = CALLS * PER_CALL


def _call_events(call_id: str) -> list[Envelope]:
    env = {"tenant_id": "acme", "call_id": call_id, "source": "test/1"}
    events: list[Envelope] = [
        CallStarted(
            **env,
            data=CallStartedData(
                direction="inbound", provider="twilio", agent_id="demo", gateway_instance="gw"
            ),
        )
    ]
    for i in range(PER_CALL - 2):
        data = TranscriptFinalData(utterance_id=f"u{i}", text="hello", start_ms=i, end_ms=i + 1)
        events.append(TranscriptFinal(**env, data=data))
    events.append(CallEnded(**env, data=CallEndedData(reason="caller_hangup", duration_s=1.0)))
    return events


async def _publish_backlog(nc: Client) -> set[str]:
    js = nc.jetstream()
    ids: set[str] = set()
    futures = []
    for _ in range(CALLS):
        for event in _call_events(new_id()):
            ids.add(event.id)
            subject = subjects.evt(event.tenant_id, event.call_id, event.type)
            futures.append(
                await js.publish_async(
                    subject, event.model_dump_json().encode(), headers={"Nats-Msg-Id": event.id}
                )
            )
    await asyncio.gather(*futures)
    assert (await js.stream_info(EVENTS.name)).state.messages >= TOTAL
    return ids


async def _stored(conn: asyncpg.Connection) -> int:
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM audit.call_events")
    except asyncpg.UndefinedTableError:
        return 0
    return count


async def _wait_rows(conn: asyncpg.Connection, at_least: int, timeout: float) -> int:
    async with asyncio.timeout(timeout):
        while (count := await _stored(conn)) < at_least:
            await asyncio.sleep(0.05)
    return count


async def test_audit_stores_a_backlog_of_10000_events_exactly_once(cluster: Cluster) -> None:
    audit = await cluster.start("audit", "audit-1")  # creates the durable consumer
    await cluster.stop(audit)
    async with cluster.client() as nc:
        ids = await _publish_backlog(nc)
    conn = await asyncpg.connect(cluster.database_url)
    try:
        assert await _stored(conn) == 0
        started = time.monotonic()
        audit = await cluster.start("audit", "audit-2")
        await _wait_rows(conn, TOTAL // 5, timeout=120)
        cluster.kill(audit)  # mid-batch: whatever was not committed comes again
        partial = await _stored(conn)
        await cluster.start("audit", "audit-3")
        await _wait_rows(conn, TOTAL, timeout=120)
        caught_up_s = time.monotonic() - started
        await asyncio.sleep(2.0)  # a duplicate or an extra row would show up by now
        rows = await conn.fetch("SELECT id::text AS id FROM audit.call_events")
        ended = await conn.fetchval("SELECT count(*) FROM audit.calls WHERE status = 'ended'")
    finally:
        await conn.close()
    stored = [r["id"] for r in rows]
    assert len(stored) == TOTAL
    assert set(stored) == ids
    assert ended == CALLS
    print(f"\naudit: {TOTAL} events caught up in {caught_up_s:.1f} s ({partial} before SIGKILL)")
