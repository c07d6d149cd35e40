"""One bad event stops nothing: the rest of its batch is stored, it becomes a dead letter.

Reproduces issue 14's stall: a ``call.initiated`` whose context holds ``"a\\u0000b"``
followed by clean events of other calls and tenants. PostgreSQL's ``jsonb`` cannot
hold ``\\u0000``; before, the whole batch (up to 3,000 events of every tenant) failed
for ever and audit logged nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.client import Client
from prometheus_client import REGISTRY

from voicebus.audit.app import build
from voicebus.audit.consumer import DURABLE
from voicebus.audit.settings import AuditSettings
from voicebus.contracts import deadletters as dl
from voicebus.contracts import streams
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallInitiated,
    CallInitiatedData,
    Envelope,
)
from voicebus.contracts.ids import new_id
from voicebus.runtime.service import Service

pytestmark = pytest.mark.integration


def _initiated(tenant: str, call_id: str, note: str = "ok") -> CallInitiated:
    data = CallInitiatedData(direction="inbound", provider="twilio", agent_id="demo",
                             context={"note": note})  # fmt: skip
    return CallInitiated(tenant_id=tenant, call_id=call_id, source="test/1", data=data)


def _ended(tenant: str, call_id: str) -> CallEnded:
    return CallEnded(tenant_id=tenant, call_id=call_id, source="test/1",
                     data=CallEndedData(reason="caller_hangup", duration_s=1.0))  # fmt: skip


@pytest.fixture
async def stack(
    embedded_nats_factory: Callable[..., Any], database_url: str
) -> AsyncIterator[tuple[AuditSettings, Client, asyncpg.Connection]]:
    server = embedded_nats_factory()
    settings = AuditSettings(nats_url=server.url, database_url=database_url, instance_id="p1")
    first, _ = build(settings)
    await first.start()  # creates the durable consumer and the tables
    await first.stop()
    nc = await nats.connect(server.url)
    db = await asyncpg.connect(database_url)
    yield settings, nc, db
    await db.close()
    await nc.drain()


async def _publish_raw(nc: Client, subject: str, body: bytes, msg_id: str) -> None:
    await nc.jetstream().publish(subject, body, headers={"Nats-Msg-Id": msg_id})


async def _publish(nc: Client, events: list[Envelope]) -> None:
    for event in events:
        await _publish_raw(nc, event.subject, event.to_bytes(), event.id)


async def _stored_ids(db: asyncpg.Connection, want: set[str], timeout: float = 30.0) -> set[str]:
    async with asyncio.timeout(timeout):
        while True:
            rows = await db.fetch("SELECT id FROM audit.call_events WHERE id = ANY($1)", list(want))
            if {r["id"] for r in rows} == want:
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # an extra row would show up now
    rows = await db.fetch("SELECT id FROM audit.call_events")
    return {r["id"] for r in rows}


async def _dead_letters(nc: Client, want: int) -> list[Any]:
    js = nc.jetstream()
    async with asyncio.timeout(20):
        while (await js.stream_info(streams.DEAD_LETTERS.name)).state.messages < want:
            await asyncio.sleep(0.1)
    return [await js.get_msg(streams.DEAD_LETTERS.name, s) for s in range(1, want + 1)]


def _count(reason: str) -> float:
    sample = REGISTRY.get_sample_value(
        "voicebus_dead_letters_total", {"service": "audit", "reason": reason}
    )
    return sample or 0.0


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "voicebus.devkit.cli", *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip


async def _run_audit(settings: AuditSettings) -> Service:
    service, _ = build(settings)
    await service.start()
    return service


async def test_a_nul_in_call_context_no_longer_stalls_every_tenant(
    stack: tuple[AuditSettings, Client, asyncpg.Connection],
) -> None:
    settings, nc, db = stack
    bad = _initiated("acme", new_id())
    body = bad.to_bytes().replace(b'"note":"ok"', b'"note":"a\\u0000b"')
    assert b"\\u0000" in body
    clean = [_initiated("acme", new_id()), _ended("acme", bad.call_id),
             _initiated("globex", new_id()), _ended("globex", new_id()),
             _initiated("initech", new_id())]  # fmt: skip
    before = _count("invalid_message")
    await _publish_raw(nc, bad.subject, body, bad.id)  # first in the batch
    await _publish(nc, clean)
    audit = await _run_audit(settings)
    try:
        stored = await _stored_ids(db, {e.id for e in clean})
        letters = await _dead_letters(nc, 1)
        info = await nc.jetstream().consumer_info(streams.EVENTS.name, DURABLE)
    finally:
        await audit.stop()
    assert stored == {e.id for e in clean}
    (letter,) = letters
    assert letter.subject == "vb.dlq.audit.invalid_message"
    assert letter.data == body  # the original bytes, for inspection and replay
    headers = letter.headers or {}
    assert headers[dl.SUBJECT] == bad.subject
    assert headers[dl.MSG_ID] == bad.id
    assert "context['note']" in headers[dl.DETAIL]
    assert "U+0000" in headers[dl.DETAIL]
    assert _count("invalid_message") == before + 1
    assert (info.num_ack_pending, info.num_pending) == (0, 0)
    assert info.config.max_deliver == -1
    url = nc.connected_url.geturl() if nc.connected_url else ""
    listed = await _cli("audit", "dead-letters", "--nats-url", url)
    assert listed.returncode == 0, listed.stderr
    assert "invalid_message" in listed.stdout
    assert "call.initiated" in listed.stdout
    shown = await _cli("audit", "dead-letters", "--show", "1", "--nats-url", url)
    assert "Vb-Dlq-Reason: invalid_message" in shown.stdout


async def test_data_the_database_refuses_is_split_out_of_its_batch(
    stack: tuple[AuditSettings, Client, asyncpg.Connection],
) -> None:
    """A field this version does not know passes the contract but reaches ``jsonb``."""
    settings, nc, db = stack
    clean: list[Envelope] = []
    for i in range(20):
        call_id = new_id()
        clean += [_initiated(f"t{i % 3}", call_id), _ended(f"t{i % 3}", call_id)]
    refused = _initiated("acme", new_id())
    envelope = json.loads(refused.to_bytes())
    envelope["data"]["x_newer_field"] = "a\u0000b"  # ignored by the model, stored as data
    body = json.dumps(envelope).encode()
    before = _count("storage_rejected")
    await _publish(nc, clean[:23])
    await _publish_raw(nc, refused.subject, body, refused.id)
    await _publish(nc, clean[23:])
    audit = await _run_audit(settings)
    try:
        stored = await _stored_ids(db, {e.id for e in clean})
        (letter,) = await _dead_letters(nc, 1)
        calls = await db.fetchval("SELECT count(*) FROM audit.calls WHERE status = 'ended'")
    finally:
        await audit.stop()
    assert stored == {e.id for e in clean}
    assert letter.subject == "vb.dlq.audit.storage_rejected"
    assert letter.data == body
    assert "SQLSTATE 22" in (letter.headers or {})[dl.DETAIL]
    assert _count("storage_rejected") == before + 1
    assert calls == 20
