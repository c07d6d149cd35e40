"""A live call survives the death of the process serving it, and a NATS restart.

A simulated Twilio caller talks to the scripted demo agent through the real
gateway; media and orchestrator run two instances each. The instance owning
the call is killed with SIGKILL while the agent's answer is playing (no
shutdown hook, its lease just stops being renewed); the survivor takes the
call over within the lease TTL and the caller is answered again. NATS is
stopped mid-call for longer than the lease TTL and started again (JetStream on
disk): every service reconnects, each owner takes its expired lease back, and the
call goes on. A killed gateway's call is ended as ``gateway_lost``. The tests share
one cluster (starting it is the slow part): each starts whatever its scenario
needs and the previous one killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any

import asyncpg
import httpx
import nats.errors
import pytest

from voicebus.contracts.agents import api
from voicebus.contracts.events import (
    AgentHandoff,
    AgentReply,
    AgentSpeechStarted,
    CallEnded,
    EndReason,
    FlowNodeEntered,
    FlowTransition,
    RecordingReady,
    TranscriptFinal,
)
from voicebus.devkit.business import BusinessServer
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.caller.timeline import Turn
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.flows import ACCOUNTS, PIN, billing_agent, lookup_account_tool, support_agent
from voicebus.runtime.rpc import RpcClient

from .conftest import LEASE_TTL_S, Cluster, wait_events

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(240)]

AGENT = "demo-scripted"
EVERYTHING = {"gateway": 1, "media": 2, "orchestrator": 2, "recorder": 1, "audit": 1}
LINES = ("Hi, where is my order 1234?", "Thanks.", "Thanks, bye.")
SLACK_MS = 5000.0
"""How much longer than before the kill the caller may wait for the first answer after a
takeover, end of speech to first agent audio: generous, since a busy machine moves
speech-to-text latency by seconds (2 shared cores: +2.2 s seen once)."""
STAGE_MS = 1000
"""transcript.final → agent.speech.started of the first line after a takeover: the part
the takeover could slow down (a consumer replaying, a cold pipeline), without the STT."""


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _stages(events: list[Any]) -> list[int]:
    """Per caller line: ms from its transcript.final to the next agent.speech.started."""
    out = []
    for i, event in enumerate(events):
        if isinstance(event, TranscriptFinal):
            nxt = next((e for e in events[i:] if isinstance(e, AgentSpeechStarted)), None)
            if nxt is not None:
                out.append(int((nxt.time - event.time).total_seconds() * 1000))
    return out


async def _answered(turn: Turn, timeout: float = 60.0) -> float:
    """Wait until the caller heard the agent answer ``turn``; its latency in ms."""
    async with asyncio.timeout(timeout):
        while turn.latency_ms is None:
            await asyncio.sleep(0.05)
    return turn.latency_ms


async def _talk(call: TwilioCaller, line: str) -> float:
    turn = await call.say_text(line)
    latency = await _answered(turn)
    assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=60)
    return latency


async def _kill_owner_and_continue(cluster: Cluster, service: str) -> dict[str, Any]:
    gateway = cluster.running("gateway")[0]
    lines = LINES
    async with cluster.client() as nc:
        async with TwilioCaller(gateway.url, DEV_TWILIO_AUTH_TOKEN, AGENT) as call:
            call_id = call.call_id
            assert call_id is not None
            assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=60)  # greeting
            owner = await cluster.wait_owner(nc, service, call_id, timeout=10)
            before = await _answered(await call.say_text(lines[0]))
            cluster.kill(cluster.by_instance(owner))  # while the answer is playing
            killed = time.monotonic()
            survivor = await cluster.wait_owner(
                nc, service, call_id, not_=owner, timeout=6 * LEASE_TTL_S
            )
            takeover_s = time.monotonic() - killed
            # Whatever was in flight plays out (or is said again by the new owner) first.
            assert await call.wait_for_agent_silence(quiet_ms=1500, timeout=60)

            after = await _talk(call, lines[1])
            await call.say_text(lines[2])
            assert await call.wait_closed(timeout=60), "the agent did not hang up"
        result = await call.hang_up()
        events = await wait_events(
            nc, call_id, lambda es: any(isinstance(e, CallEnded) for e in es)
        )
    assert result.server_closed
    assert result.protocol_errors == []
    finals = [_words(e.data.text) for e in events if isinstance(e, TranscriptFinal)]
    # No final utterance lost: every line the caller said is transcribed once, in order.
    assert finals == [_words(line) for line in lines]
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert [e.data.reason for e in ended] == [EndReason.AGENT_HANGUP]
    assert after <= before + SLACK_MS, (before, after)
    stages = _stages(events)
    assert stages[1] < STAGE_MS, stages
    print(  # shown with -s: the figures the issue asks for
        f"\n{service}: takeover {takeover_s:.1f} s after SIGKILL; "
        f"answer latency {before:.0f} ms before, {after:.0f} ms after; "
        f"transcript → agent speech (ms): {stages}"
    )
    return {"owner": owner, "survivor": survivor, "takeover_s": takeover_s, "after": after}


async def test_killing_the_media_instance_of_a_live_call(cluster: Cluster) -> None:
    await cluster.ensure(EVERYTHING)  # all at once: later tests find them running
    outcome = await _kill_owner_and_continue(cluster, "media")
    assert outcome["survivor"] != outcome["owner"]
    assert outcome["takeover_s"] < 4 * LEASE_TTL_S


async def test_killing_the_orchestrator_instance_of_a_live_call(cluster: Cluster) -> None:
    await cluster.ensure({"gateway": 1, "media": 1, "orchestrator": 2})
    outcome = await _kill_owner_and_continue(cluster, "orchestrator")
    assert outcome["survivor"] != outcome["owner"]
    assert outcome["takeover_s"] < 4 * LEASE_TTL_S


async def test_killing_the_orchestrator_mid_flow_resumes_at_the_same_node(
    cluster: Cluster,
) -> None:
    """The successor continues the flow where it was, with the variables captured before."""
    await cluster.ensure({"gateway": 1, "media": 1, "orchestrator": 2})
    gateway = cluster.running("gateway")[0]
    business = await BusinessServer(
        secret="whsec-resilience-01234567", accounts=dict(ACCOUNTS)
    ).start()
    try:
        async with cluster.client() as nc:
            rpc = RpcClient(nc, timeout_s=10)
            tool = lookup_account_tool(business.url, business.secret)
            await rpc.ask(api.TOOLS_CREATE, api.CreateTool(tenant_id="default", tool=tool),
                          api.ToolRecordReply)  # fmt: skip
            for agent_id, definition in (
                ("support", support_agent()),
                ("billing", billing_agent()),
            ):
                request = api.ImportAgent(tenant_id="default", agent_id=agent_id,
                                          definition=definition)  # fmt: skip
                await rpc.ask(api.AGENTS_IMPORT, request, api.AgentRecordReply)
            async with TwilioCaller(gateway.url, DEV_TWILIO_AUTH_TOKEN, "support") as call:
                call_id = call.call_id
                assert call_id is not None
                assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=60)  # greeting
                await call.say_text("I have a question about my account.")
                await wait_events(
                    nc,
                    call_id,
                    lambda es: any(
                        isinstance(e, FlowNodeEntered) and e.data.node_id == "verify" for e in es
                    ),
                )
                assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=60)
                owner = await cluster.wait_owner(nc, "orchestrator", call_id, timeout=10)
                cluster.kill(cluster.by_instance(owner))
                survivor = await cluster.wait_owner(
                    nc, "orchestrator", call_id, not_=owner, timeout=6 * LEASE_TTL_S
                )
                for key in f"{PIN}#":
                    await call.send_dtmf(key)
                    await asyncio.sleep(0.2)
                events = await wait_events(
                    nc,
                    call_id,
                    lambda es: any(isinstance(e, AgentHandoff) for e in es),
                    timeout=60,
                )
                assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=60)
                await call.say_text("Thanks, bye.")
                assert await call.wait_closed(timeout=60), "the agent did not hang up"
            await call.hang_up()
            events = await wait_events(
                nc, call_id, lambda es: any(isinstance(e, CallEnded) for e in es)
            )
    finally:
        await business.stop()
    assert survivor != owner
    moves = [(e.data.from_node_id, e.data.to_node_id, e.data.arguments, e.source)
             for e in events if isinstance(e, FlowTransition)]  # fmt: skip
    assert [m[:3] for m in moves] == [
        ("greet", "verify", {"reason": "account question"}),
        ("verify", "lookup", {"pin": PIN}),
        ("lookup", "billing", {}),
    ]
    # The first move by the instance that died, the others by its successor.
    assert owner in moves[0][3]
    assert all(survivor in m[3] for m in moves[1:])
    (handoff,) = [e for e in events if isinstance(e, AgentHandoff)]
    assert handoff.data.variables["reason"] == "account question"  # captured before the kill
    assert handoff.data.variables["customer_name"] == "Ada"
    replies = [e.data.text for e in events if isinstance(e, AgentReply)]
    assert any("Billing here, Ada." in text for text in replies)
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert [e.data.reason for e in ended] == [EndReason.AGENT_HANGUP]


async def _all_ready(cluster: Cluster, timeout: float) -> None:
    async with httpx.AsyncClient(timeout=1.0) as client, asyncio.timeout(timeout):
        for proc in [p for p in cluster.procs if p.alive]:
            while True:
                assert proc.alive, proc.log_tail()
                try:
                    if (await client.get(f"{proc.url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)


async def _held_by(
    cluster: Cluster, nc: Any, service: str, call_id: str, owner: str, timeout: float
) -> None:
    """Wait until ``owner`` holds the call's ``service`` lease (never another instance)."""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(nats.errors.Error):
                held = await cluster.owner(nc, service, call_id)
                assert held in (None, owner), f"{service} lease moved to {held}"
                if held == owner:
                    return
            await asyncio.sleep(0.1)


async def test_a_call_survives_a_nats_restart(cluster: Cluster) -> None:
    await cluster.ensure({"gateway": 1, "media": 1, "orchestrator": 1, "recorder": 1, "audit": 1})
    gateway = cluster.running("gateway")[0]
    async with cluster.client() as nc:
        async with TwilioCaller(gateway.url, DEV_TWILIO_AUTH_TOKEN, "demo-scripted") as call:
            call_id = call.call_id
            assert call_id is not None
            assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=60)
            await _talk(call, LINES[0])
            owners = {s: await cluster.owner(nc, s, call_id) for s in ("media", "orchestrator")}

            # NATS stays down longer than the lease TTL, as a slow restart on a busy machine
            # does anyway: every lease expires, and with nobody else to take it, its owner
            # must take it back (and keep renewing it) while the call goes on.
            down = time.monotonic()
            await asyncio.to_thread(cluster.nats.stop)
            await asyncio.sleep(LEASE_TTL_S + 1)
            await asyncio.to_thread(cluster.nats.start)
            await _all_ready(cluster, timeout=30)
            ready_s = time.monotonic() - down
            for service, owner in owners.items():
                await _held_by(cluster, nc, service, call_id, owner, timeout=30)
            await asyncio.sleep(LEASE_TTL_S)
            for service, owner in owners.items():
                assert await cluster.owner(nc, service, call_id) == owner

            await _talk(call, LINES[1])
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

    # The claim consumers resumed too: a new call after the restart is served.
    async with TwilioCaller(gateway.url, DEV_TWILIO_AUTH_TOKEN, "demo-scripted") as call:
        assert await call.wait_for_agent_audio(ms=500, timeout=60), "no greeting"
    await call.hang_up()
    print(f"\nnats restart: every service ready again {ready_s:.1f} s after the stop")


async def test_killing_the_gateway_ends_the_call_as_gateway_lost(cluster: Cluster) -> None:
    await cluster.ensure({"gateway": 1, "media": 1, "orchestrator": 1, "recorder": 1, "audit": 1})
    gateway = cluster.running("gateway")[0]
    async with cluster.client() as nc:
        async with TwilioCaller(gateway.url, DEV_TWILIO_AUTH_TOKEN, AGENT) as call:
            call_id = call.call_id
            assert call_id is not None
            assert await call.wait_for_agent_silence(quiet_ms=1000, timeout=60)
            await cluster.wait_owner(nc, "orchestrator", call_id, timeout=10)
            cluster.kill(gateway)
            killed = time.monotonic()
            events = await wait_events(
                nc,
                call_id,
                lambda es: any(isinstance(e, CallEnded) for e in es),
                timeout=6 * LEASE_TTL_S,
            )
            ended_after_s = time.monotonic() - killed
            assert await call.wait_closed(timeout=10)
        await call.hang_up()
        await asyncio.sleep(2 * LEASE_TTL_S)  # a second end would be published by now
        events = await wait_events(nc, call_id, lambda es: True)
        # Every owner let the call go: no lease is left behind to be renewed forever.
        for service in ("media", "orchestrator", "recorder"):
            assert await cluster.owner(nc, service, call_id) is None, service
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert [e.data.reason for e in ended] == [EndReason.GATEWAY_LOST]
    assert ended_after_s < 4 * LEASE_TTL_S
    print(f"\ngateway: call.ended gateway_lost {ended_after_s:.1f} s after SIGKILL")
    # Audit closes the call: ended, gateway_lost, not left in progress.
    conn = await asyncpg.connect(cluster.database_url)
    try:
        async with asyncio.timeout(30):
            while True:
                row = await conn.fetchrow(
                    "SELECT status, ended_reason FROM audit.calls WHERE call_id = $1", call_id
                )
                if row is not None and row["status"] == "ended":
                    break
                await asyncio.sleep(0.2)
    finally:
        await conn.close()
    assert row["ended_reason"] == "gateway_lost"
