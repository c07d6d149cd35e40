"""Concurrent-call slots on a real nats-server: exact admission across two gateway
instances, release (here, by a call.ended stored elsewhere, or a call that never
started), and a dead holder's slot freed by the bucket's TTL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import nats
import pytest
from nats.js.errors import KeyNotFoundError

from voicebus.contracts.events import CallEnded, CallEndedData, EndReason
from voicebus.contracts.streams import CALL_SLOTS, slot_key
from voicebus.gateway.call_slots import CallSlots
from voicebus.runtime.provision import kv_buckets, provision

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TTL_S = 1.0
START_S = 3600.0  # no call here starts: its slot must not go for that


async def _admitted_soon(slots: CallSlots, tenant: str, call: str, cap: int, start: float) -> None:
    """Admission succeeds within a generous bound (once a slot frees)."""
    async with asyncio.timeout(15):
        while not await slots.admit(tenant, call, cap, start):
            await asyncio.sleep(TTL_S / 4)


async def test_a_cap_admits_exactly_n_across_gateways_and_a_dead_holders_slot_expires(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    nc = await nats.connect(embedded_nats_factory().url)
    try:
        js = nc.jetstream()
        await provision(js, kv_buckets=kv_buckets(TTL_S))
        one, two = CallSlots(), CallSlots()
        await one.open(js, "gw-1", TTL_S)
        await two.open(js, "gw-2", TTL_S)

        # Five calls at once, on two gateways: exactly two get one of the two slots.
        calls = [(one if n % 2 else two, f"c{n}") for n in range(5)]
        admitted = await asyncio.gather(*(s.admit("acme", c, 2, START_S) for s, c in calls))
        assert sum(admitted) == 2
        assert await one.admit("globex", "g1", 1, START_S)  # another tenant's slots are its own
        assert await one.admit("acme", "uncapped", None, START_S)

        # A call ends: its slot frees, the next call takes it.
        winner, call_id = next(sc for sc, ok in zip(calls, admitted, strict=True) if ok)
        await winner.release(call_id)
        assert await two.admit("acme", "c5", 2, START_S)
        assert not await one.admit("acme", "c6", 2, START_S)

        # The call ended on another gateway (its stream landed there): the holder sees the
        # stored call.ended at its next renewal and lets the slot go.
        held_by, held = next(
            sc for sc, ok in zip(calls, admitted, strict=True) if ok and sc[1] != call_id
        )
        ended = CallEnded(tenant_id="acme", call_id=held, source="gateway/other",
                          data=CallEndedData(reason=EndReason.CALLER_HANGUP))  # fmt: skip
        await js.publish(ended.subject, ended.to_bytes(), headers={"Nats-Msg-Id": ended.id})
        await _admitted_soon(held_by, "acme", "c7", 2, START_S)
        # A call whose stream never started within its bound frees its slot the same way.
        assert await one.admit("umbrella", "u1", 1, 0.0)
        await _admitted_soon(two, "umbrella", "u2", 1, START_S)

        # A holder that stops renewing (a dead gateway) loses its slots after the TTL,
        # while the live gateway's slots stay renewed.
        kv = await js.key_value(CALL_SLOTS.bucket)
        await one.close()
        await kv.create(slot_key("initech", 0), b"gw-dead")
        assert not await two.admit("initech", "i1", 1, START_S)
        await _admitted_soon(two, "initech", "i2", 1, START_S)
        await asyncio.sleep(2 * TTL_S)  # well past the TTL: renewed, not expired
        assert not await two.admit("initech", "i3", 1, START_S)
        await two.close()
        with pytest.raises(KeyNotFoundError):
            await kv.get(slot_key("initech", 0))
    finally:
        await nc.close()
