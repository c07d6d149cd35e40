"""A call whose gateway died is ended as ``gateway_lost``, once, by the orchestrator.

Two real orchestrator instances on a real nats-server with 1 s call leases. The
gateway's lease is taken and never renewed (the gateway "dies"); the instance
owning the call publishes ``call.ended`` with reason ``gateway_lost``; the other
instance trying the same (as it would after a takeover race) publishes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from voicebus.contracts import subjects
from voicebus.contracts.events import (
    CallEnded,
    CallEvent,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    parse_event,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.streams import CALL_OWNERS
from voicebus.orchestrator.app import build
from voicebus.orchestrator.calls import Orchestrator
from voicebus.orchestrator.settings import OrchestratorSettings
from voicebus.runtime.leases import GATEWAY, CallLeases
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REPO_AGENTS = Path(__file__).resolve().parents[3] / "agents"
TTL_S = 1.0


async def _start(url: str, instance_id: str) -> tuple[Service, Orchestrator]:
    settings = OrchestratorSettings(
        nats_url=url, instance_id=instance_id, agents_dir=REPO_AGENTS, call_lease_ttl_s=TTL_S
    )
    service, app = build(settings, environ={})
    await service.start()
    return service, app.state.orchestrator


async def _events(nc: Client, call_id: str) -> list[CallEvent]:
    sub = await nc.jetstream().subscribe(
        subjects.evt_filter(call_id=call_id),
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    events = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                return events
            events.append(parse_event(msg.data))
    finally:
        await sub.unsubscribe()


async def _until(check: Callable[[], Any], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


async def test_the_owner_ends_a_call_whose_gateway_lease_expired_exactly_once(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    url = embedded_nats_factory().url
    first, second = await _start(url, "o-a"), await _start(url, "o-b")
    nc = await nats.connect(url)
    try:
        call_id = new_id()
        kv = await nc.jetstream().key_value(CALL_OWNERS.bucket)
        gateway = CallLeases(kv, GATEWAY, "gw-1", ttl_s=TTL_S)
        assert await gateway.claim(call_id)  # and never renewed: the gateway died
        started = CallStarted(
            tenant_id="acme", call_id=call_id, source="gateway/gw-1",
            data=CallStartedData(direction=Direction.INBOUND, provider="twilio",
                                 agent_id="demo-scripted", gateway_instance="gw-1"),
        )  # fmt: skip
        await publish_event(first[0].broker, started)

        async def claimed() -> bool:
            return any(call_id in o.conversations for _s, o in (first, second))

        await _until(claimed)
        owner, other = (first, second) if call_id in first[1].conversations else (second, first)

        async def ended() -> list[CallEnded]:
            return [e for e in await _events(nc, call_id) if isinstance(e, CallEnded)]

        await _until(lambda: _has(ended))
        await other[1]._gateway_lost(started)  # a second instance racing the first
        await asyncio.sleep(1.0)
        stored = await ended()
        assert [e.data.reason for e in stored] == [EndReason.GATEWAY_LOST]
        # call.ended reached the owner: it let the call go.
        await _until(lambda: _empty(owner[1]))
    finally:
        await nc.drain()
        for service, _orchestrator in (first, second):
            await service.stop()


async def _has(ended: Callable[[], Any]) -> bool:
    return bool(await ended())


async def _empty(orchestrator: Orchestrator) -> bool:
    return not orchestrator.conversations and not orchestrator.claims.leases.held
