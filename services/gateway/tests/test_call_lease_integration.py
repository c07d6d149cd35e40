"""The gateway's call lease: held while the stream is up, taken back after an unnoticed
expiry, and given up (the caller hung up, once) when the platform ended the call meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import nats
import pytest
from gateway_kit import (
    EventLog,
    FakeOrchestrator,
    TwilioPeer,
    post_webhook,
    serve_gateway,
    twiml_stream,
)
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

from voicebus.contracts import subjects
from voicebus.contracts.events import CallEnded, CallEndedData, EndReason, parse_event
from voicebus.contracts.ids import derived_id
from voicebus.contracts.streams import CALL_OWNERS, owner_key
from voicebus.runtime.leases import GATEWAY
from voicebus.runtime.publish import publish_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TTL_S = 1.0


async def test_an_expired_lease_is_taken_back_unless_the_call_was_ended_meanwhile(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    async with serve_gateway(server.url, call_lease_ttl_s=TTL_S) as gw:
        await FakeOrchestrator(["demo"]).start(gw.nc)
        events = await EventLog().start(gw.nc)
        url, params = twiml_stream((await post_webhook(gw, "demo")).text)
        call_id = params["call_id"]
        peer = await TwilioPeer.open(url)
        await peer.connected()
        await peer.start(params)
        started = await events.one("call.started.v1", call_id)
        kv = await gw.nc.jetstream().key_value(CALL_OWNERS.bucket)
        key = owner_key(GATEWAY, call_id)
        assert (await kv.get(key)).value == b"gw-test"

        # The lease vanished (as after an outage longer than the TTL): the call is still
        # live, so the gateway takes its lease back and the call goes on.
        await kv.delete(key)
        async with asyncio.timeout(10):
            while True:
                try:
                    if (await kv.get(key)).value == b"gw-test":
                        break
                except KeyNotFoundError:
                    pass
                await asyncio.sleep(0.1)
        assert not peer.closed.is_set()

        # Meanwhile the orchestrator declared the gateway lost: the caller is hung up and
        # the gateway's own gateway_lost end has the same id, so it is stored once.
        lost = CallEnded(
            id=derived_id(call_id, EndReason.GATEWAY_LOST.value),
            tenant_id=started.tenant_id,
            call_id=call_id,
            source="orchestrator/o-1",
            data=CallEndedData(reason=EndReason.GATEWAY_LOST),
        )
        await publish_event(gw.service.broker, lost)
        await kv.delete(key)
        async with asyncio.timeout(10):
            await peer.closed.wait()
        await asyncio.sleep(1.0)  # the gateway's own end is published by now
        assert [e.id for e in await _stored_ends(gw.nc, call_id)] == [lost.id]
        with pytest.raises(KeyNotFoundError):
            await kv.get(key)


async def _stored_ends(nc: Client, call_id: str) -> list[CallEnded]:
    sub = await nc.jetstream().subscribe(
        subjects.evt_filter(call_id=call_id, event_type="call.ended"), ordered_consumer=True
    )
    found: list[CallEnded] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return found
            event = parse_event(msg.data)
            assert isinstance(event, CallEnded)
            found.append(event)
    finally:
        await sub.unsubscribe()
