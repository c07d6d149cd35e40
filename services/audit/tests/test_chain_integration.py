"""A call's stored events are a hash chain: recomputed from the rows, a changed row is caught.

On real NATS and PostgreSQL: audit stores a call, ``voicebus audit verify`` (asking
audit over request/reply) finds the chain intact; an ``UPDATE`` of one row's data,
a deleted row and a rewritten head are each reported at the right place. Several
writers storing events of the same calls at once still build one unbroken chain per call.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.client import Client

from voicebus.audit.app import build
from voicebus.audit.chain import Incoming
from voicebus.audit.store import EventStore
from voicebus.audit.verify import verify_call
from voicebus.contracts.chains import CHAINS_VERIFY, ChainReport, VerifyChains
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
from voicebus.runtime import db as dbkit
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service

pytestmark = pytest.mark.integration


def _call(tenant: str, call_id: str, turns: int = 4) -> list[Envelope]:
    env = {"tenant_id": tenant, "call_id": call_id, "source": "test/1"}
    events: list[Envelope] = [
        CallStarted(**env, data=CallStartedData(direction="inbound", provider="twilio",
                                                agent_id="demo", gateway_instance="gw"))
    ]  # fmt: skip
    for i in range(turns):
        data = TranscriptFinalData(utterance_id=f"u{i}", text=f"line {i}, 1.0 ✓", start_ms=i,
                                   end_ms=i + 1, confidence=0.5 + i / 100)  # fmt: skip
        events.append(TranscriptFinal(**env, data=data))
    events.append(CallEnded(**env, data=CallEndedData(reason="caller_hangup", duration_s=3.0)))
    return events


@pytest.fixture
async def audit(
    embedded_nats_factory: Callable[..., Any], database_url: str
) -> AsyncIterator[tuple[Service, Client, str]]:
    server = embedded_nats_factory()
    settings = AuditSettings_(server.url, database_url)
    service, _ = build(settings)
    await service.start()
    nc = await nats.connect(server.url)
    yield service, nc, server.url
    await nc.drain()
    await service.stop()


def AuditSettings_(nats_url: str, database_url: str) -> Any:  # noqa: N802 - a fixture helper
    from voicebus.audit.settings import AuditSettings

    return AuditSettings(nats_url=nats_url, database_url=database_url, instance_id="v1")


async def _stored(database_url: str, call_id: str, want: int) -> None:
    db = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(30):
            while (
                await db.fetchval(
                    "SELECT count(*) FROM audit.call_events WHERE call_id = $1", call_id
                )
                < want
            ):
                await asyncio.sleep(0.1)
    finally:
        await db.close()


async def _verify(nc: Client, **fields: Any) -> ChainReport:
    request = VerifyChains(tenant_id="acme", **fields)
    msg = await nc.request(CHAINS_VERIFY, request.model_dump_json().encode(), timeout=20)
    return ChainReport.model_validate_json(msg.data)


async def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "voicebus.devkit.cli", "audit", "verify", *args,
               "--tenant", "acme", "--nats-url", url]  # fmt: skip
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )


async def test_a_tampered_row_is_caught_at_its_link(
    audit: tuple[Service, Client, str], database_url: str
) -> None:
    service, nc, url = audit
    call_id, other_id = new_id(), new_id()
    events = _call("acme", call_id)
    for event in [*events, *_call("acme", other_id)]:
        await publish_event(service.broker, event)
    await _stored(database_url, call_id, len(events))
    await _stored(database_url, other_id, len(events))

    intact = (await _verify(nc, call_id=call_id)).results[0]
    assert (intact.ok, intact.length) == (True, len(events))
    db = await asyncpg.connect(database_url)
    try:
        head = await db.fetchrow(
            "SELECT chain_head, chain_length FROM audit.calls WHERE call_id = $1", call_id
        )
        ended = await db.fetchrow(
            "SELECT hash, chain_seq FROM audit.call_events WHERE id = $1", events[-1].id
        )
        assert (head["chain_head"].hex(), head["chain_length"]) == (intact.head, len(events))
        assert (ended["hash"], ended["chain_seq"]) == (head["chain_head"], len(events))
        ok = await _cli(url, call_id)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "1 call(s) verified, 0 broken" in ok.stdout

        # Someone with database access rewrites what the caller said in the third event.
        target = events[2]
        await db.execute(
            "UPDATE audit.call_events SET data = jsonb_set(data, '{text}', '\"I agree\"') "
            "WHERE id = $1",
            target.id,
        )
        broken = (await _verify(nc, call_id=call_id)).results[0]
        assert (broken.ok, broken.broken_at, broken.event_id) == (False, 3, target.id)
        caught = await _cli(url, call_id)
        assert caught.returncode == 1
        assert "BROKEN" in caught.stdout
        assert target.id in caught.stdout

        since = datetime.now(UTC) - timedelta(hours=1)
        report = await _verify(nc, since=since)
        assert {r.call_id: r.ok for r in report.results} == {call_id: False, other_id: True}
        everything = await _cli(url, "--since", since.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
        assert everything.returncode == 1
        assert "2 call(s) verified, 1 broken" in everything.stdout

        # A row removed from the other call, then its head rewritten to hide a truncation.
        await db.execute("DELETE FROM audit.call_events WHERE call_id = $1 AND chain_seq = 2",
                         other_id)  # fmt: skip
        gap = (await _verify(nc, call_id=other_id)).results[0]
        assert (gap.ok, gap.broken_at) == (False, 2)
        await db.execute(
            "DELETE FROM audit.call_events WHERE call_id = $1 AND chain_seq > 1", other_id
        )
        short = (await _verify(nc, call_id=other_id)).results[0]
        assert not short.ok
        assert "links" in (short.problem or "")
    finally:
        await db.close()


async def test_writers_storing_one_call_at_once_build_one_chain(database_url: str) -> None:
    """Four stores on four connection pools append events of the same calls concurrently."""
    engines = [dbkit.create_engine(database_url, "audit") for _ in range(4)]
    stores = [EventStore(e) for e in engines]
    calls = [new_id() for _ in range(3)]
    events = [e for c in calls for e in _call("acme", c, turns=38)]  # 40 per call
    chunks = [events[i::12] for i in range(12)]  # interleaved: every writer touches every call

    async def write(store: EventStore, chunk: list[Envelope]) -> int:
        stored = 0
        for i in range(0, len(chunk), 3):
            batch = [Incoming.of(e, None, e.to_bytes()) for e in chunk[i : i + 3]]  # type: ignore[arg-type]
            stored += await store.append_many(batch)
        return stored

    try:
        counts = await asyncio.gather(
            *(write(stores[i % 4], chunk) for i, chunk in enumerate(chunks))
        )
        # A redelivered batch (same ids, another writer) stores nothing and moves no head.
        again = await stores[1].append_many(
            [Incoming.of(e, None, e.to_bytes()) for e in events[:5]]  # type: ignore[arg-type]
        )
        results = [await verify_call(engines[0], "acme", c) for c in calls]
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(counts) == len(events)
    assert again == 0
    for result in results:
        assert result is not None
        assert (result.ok, result.length) == (True, 40), result
