"""Call leases and claims on a real nats-server: one owner per call, handover on expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    EndReason,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.streams import CALL_OWNERS, KVSpec
from voicebus.runtime.claims import CallClaims
from voicebus.runtime.leases import CallLeases
from voicebus.runtime.provision import provision
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service
from voicebus.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration


async def test_only_one_instance_wins_a_lease(nats_client: Client) -> None:
    js = nats_client.jetstream()
    await provision(js)
    kv = await js.key_value(CALL_OWNERS.bucket)
    a, b = CallLeases(kv, "media", "media-a"), CallLeases(kv, "media", "media-b")
    call = new_id()
    results = await asyncio.gather(a.claim(call), b.claim(call))
    assert sorted(results) == [False, True]
    winner, loser = (a, b) if results[0] else (b, a)
    assert await loser.owner(call) == ("media-a" if winner is a else "media-b")
    assert await winner.claim(call)  # claiming again is idempotent for the owner
    await winner.release(call)
    assert await loser.claim(call)
    assert call in loser.held
    assert call not in winner.held


async def test_an_unrenewed_lease_expires_and_renewal_detects_the_loss(
    nats_client: Client,
) -> None:
    js = nats_client.jetstream()
    short = KVSpec(bucket=f"leases_{new_id()[-8:]}", ttl_s=1.0, history=1, description="test")
    await provision(js, streams=(), kv_buckets=(short,))
    kv = await js.key_value(short.bucket)
    a = CallLeases(kv, "media", "media-a", ttl_s=short.ttl_s)
    b = CallLeases(kv, "media", "media-b", ttl_s=short.ttl_s)
    call = new_id()
    assert await a.claim(call)
    await a.renew()  # a renewal keeps it
    assert not await b.claim(call)
    for _ in range(40):  # a "dies": no more renewals; the TTL lets b take over
        await asyncio.sleep(0.1)
        if await b.claim(call):
            break
    assert call in b.held
    assert await a.renew() == [call]  # the old owner learns it lost the call
    assert call not in a.held


class _MediaSettings(ServiceSettings):
    service_name = "media"
    default_http_port = 8081


async def test_claims_hand_each_call_to_one_instance_and_release_on_end(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    started: dict[str, list[str]] = {"m1": [], "m2": []}
    ended: dict[str, list[str]] = {"m1": [], "m2": []}
    services = []
    for name in ("m1", "m2"):

        async def on_start(event: CallStarted, name: str = name) -> None:
            started[name].append(event.call_id)

        async def on_end(event: CallEnded, name: str = name) -> None:
            ended[name].append(event.call_id)

        service = Service(_MediaSettings(nats_url=server.url, instance_id=name))
        CallClaims(service, on_start, on_end)
        services.append(service)
    for service in services:
        await service.start()
    try:
        calls = [new_id() for _ in range(6)]
        for call in calls:
            await publish_event(services[0].broker, _started(call))
        await _until(lambda: sum(map(len, started.values())) == len(calls))
        assert sorted(started["m1"] + started["m2"]) == sorted(calls)
        # The same fact published again (a retry with a new event id) starts nothing twice.
        await publish_event(services[0].broker, _started(calls[0]))
        await asyncio.sleep(0.5)
        assert sorted(started["m1"] + started["m2"]) == sorted(calls)

        # call.ended reaches every instance over core NATS. Those subscribers must not
        # answer the publisher's reply inbox, or the JetStream publish gets their empty
        # reply instead of its PubAck: every publish below would fail.
        replies: list[bytes] = []
        inbox = services[0].nc.new_inbox()

        async def collect(msg: Msg) -> None:
            replies.append(msg.data)

        sub = await services[0].nc.subscribe(inbox, cb=collect)
        first = _ended(calls[0])
        await services[0].nc.publish(
            first.subject, first.to_bytes(), reply=inbox, headers={"Nats-Msg-Id": first.id}
        )
        for call in calls[1:]:
            ack = await publish_event(services[1].broker, _ended(call))
            assert ack.stream == "VB_EVENTS"
        await asyncio.sleep(0.5)
        await sub.unsubscribe()
        assert len(replies) == 1, replies  # JetStream's PubAck, and nothing else
        assert b'"stream":"VB_EVENTS"' in replies[0].replace(b" ", b"")
        await _until(lambda: sum(map(len, ended.values())) == len(calls))
        assert sorted(ended["m1"]) == sorted(started["m1"])
        assert sorted(ended["m2"]) == sorted(started["m2"])
    finally:
        for service in services:
            await service.stop()


def _started(call_id: str) -> CallStarted:
    return CallStarted(
        tenant_id="acme",
        call_id=call_id,
        source="test/1",
        data=CallStartedData(
            direction="inbound", provider="twilio", agent_id="demo", gateway_instance="gw"
        ),
    )


def _ended(call_id: str) -> CallEnded:
    return CallEnded(
        tenant_id="acme",
        call_id=call_id,
        source="test/1",
        data=CallEndedData(reason=EndReason.CALLER_HANGUP),
    )


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)
