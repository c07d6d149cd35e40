"""The audit service on real NATS and PostgreSQL: every event stored exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import nats
import pytest

from voicebus.audit.app import build
from voicebus.audit.settings import AuditSettings
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallRinging,
    CallRingingData,
    CallStarted,
    CallStartedData,
    EndReason,
)
from voicebus.contracts.ids import new_id
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit(
    embedded_nats_factory: Callable[..., Any], database_url: str
) -> AsyncIterator[Service]:
    server = embedded_nats_factory()
    settings = AuditSettings(nats_url=server.url, database_url=database_url, instance_id="a1")
    service, _app = build(settings)
    await service.start()
    yield service
    await service.stop()


def _events(call_id: str) -> list[Any]:
    env = {"tenant_id": "acme", "call_id": call_id, "source": "test/1"}
    started = CallStarted(
        **env,
        data=CallStartedData(direction="outbound", provider="twilio", agent_id="demo",
                             gateway_instance="gw", to_number="+14155550199"),
    )  # fmt: skip
    ringing = CallRinging(  # arrives late: it must not rewind the call
        **env, time=started.time - timedelta(seconds=2), data=CallRingingData()
    )
    ended = CallEnded(**env, data=CallEndedData(reason=EndReason.AGENT_HANGUP, duration_s=3.0))
    return [started, ringing, ended]


async def _rows(database_url: str, call_id: str, want: int) -> tuple[int, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(100):
            count = await conn.fetchval(
                "SELECT count(*) FROM audit.call_events WHERE call_id = $1", call_id
            )
            if count >= want:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # anything extra would show up now
        count = await conn.fetchval(
            "SELECT count(*) FROM audit.call_events WHERE call_id = $1", call_id
        )
        call = await conn.fetchrow("SELECT * FROM audit.calls WHERE call_id = $1", call_id)
    finally:
        await conn.close()
    return count, call


async def test_events_are_stored_once_and_the_call_row_follows(
    audit: Service, database_url: str
) -> None:
    call_id = new_id()
    events = _events(call_id)
    for event in events:
        await publish_event(audit.broker, event)
    # A redelivered event (same id, outside the stream's dedup: straight to the
    # handler's idempotency) and garbage on an event subject.
    await audit.nc.publish(events[0].subject, events[0].to_bytes())
    await audit.nc.jetstream().publish(events[0].subject.replace("started", "x"), b"{not json")
    count, call = await _rows(database_url, call_id, want=3)
    assert count == 3
    assert call["status"] == "ended"
    assert call["ended_reason"] == "agent_hangup"
    assert call["direction"] == "outbound"
    assert call["to_number"] == "+14155550199"
    assert call["started_at"] is not None


async def test_audit_catches_up_on_events_published_while_it_was_down(
    embedded_nats_factory: Callable[..., Any], database_url: str
) -> None:
    server = embedded_nats_factory()
    settings = AuditSettings(nats_url=server.url, database_url=database_url, instance_id="a2")
    first, _ = build(settings)
    await first.start()  # creates the durable consumer
    await first.stop()
    nc = await nats.connect(server.url)
    call_id = new_id()
    for event in _events(call_id):  # nobody consumes now
        await nc.jetstream().publish(
            event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id}
        )
    await nc.drain()
    second, _ = build(settings)
    await second.start()
    try:
        count, call = await _rows(database_url, call_id, want=3)
    finally:
        await second.stop()
    assert count == 3
    assert call["status"] == "ended"
