"""NATS restarts in the middle of a call: every service reconnects and the call goes on.

The server keeps JetStream on disk (fsync on every write), so streams, durable
consumers and the KV buckets (sessions, leases) survive the restart. Audio
frames sent while the server is down are lost; the call must not be.
"""

from __future__ import annotations

import asyncio
import re
import time

import asyncpg
import httpx
import pytest

from voicebus.contracts.events import CallEnded, EndReason, RecordingReady, TranscriptFinal
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN

from .conftest import LEASE_TTL_S, Cluster, wait_events

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(240)]

SERVICES = {"gateway": 1, "media": 1, "orchestrator": 1, "recorder": 1, "audit": 1}
LINES = ("Hi, where is my order 1234?", "Thanks.", "Thanks, bye.")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


async def _all_ready(cluster: Cluster, timeout: float) -> None:
    async with httpx.AsyncClient(timeout=1.0) as client, asyncio.timeout(timeout):
        for proc in cluster.procs:
            while True:
                assert proc.alive, proc.log_tail()
                try:
                    if (await client.get(f"{proc.url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)


async def _answered(call: TwilioCaller, line: str) -> None:
    turn = await call.say_text(line)
    async with asyncio.timeout(60):
        while turn.latency_ms is None:
            await asyncio.sleep(0.05)
    assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=60)


async def test_a_call_survives_a_nats_restart(cluster: Cluster) -> None:
    await cluster.ensure(SERVICES)
    gateway = cluster.running("gateway")[0]
    async with cluster.client() as nc:
        async with TwilioCaller(gateway.url, DEV_TWILIO_AUTH_TOKEN, "demo-scripted") as call:
            call_id = call.call_id
            assert call_id is not None
            assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=60)
            await _answered(call, LINES[0])
            owners = {s: await cluster.owner(nc, s, call_id) for s in ("media", "orchestrator")}

            down = time.monotonic()
            await asyncio.to_thread(cluster.nats.restart)
            await _all_ready(cluster, timeout=30)
            ready_s = time.monotonic() - down
            # The leases survived on disk and are still renewed by their owners.
            await asyncio.sleep(LEASE_TTL_S)
            for service, owner in owners.items():
                assert await cluster.owner(nc, service, call_id) == owner

            await _answered(call, LINES[1])
            await call.say_text(LINES[2])
            assert await call.wait_closed(timeout=60), "the agent did not hang up"
        result = await call.hang_up()
        events = await wait_events(
            nc, call_id, lambda es: any(isinstance(e, RecordingReady) for e in es), timeout=60
        )
    assert result.server_closed
    finals = [_words(e.data.text) for e in events if isinstance(e, TranscriptFinal)]
    assert finals == [_words(line) for line in LINES]
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert [e.data.reason for e in ended] == [EndReason.AGENT_HANGUP]
    # Audit's durable consumer resumed: every event of the call is stored, once.
    conn = await asyncpg.connect(cluster.database_url)
    try:
        async with asyncio.timeout(30):
            while True:
                rows = await conn.fetch(
                    "SELECT id::text AS id FROM audit.call_events WHERE call_id = $1", call_id
                )
                if len(rows) >= len(events):
                    break
                await asyncio.sleep(0.2)
        status = await conn.fetchval("SELECT status FROM audit.calls WHERE call_id = $1", call_id)
    finally:
        await conn.close()
    assert sorted(r["id"] for r in rows) == sorted(e.id for e in events)
    assert status == "ended"
    print(f"\nnats restart: every service ready again {ready_s:.1f} s after the stop")
