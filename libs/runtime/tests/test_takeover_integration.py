"""Takeover on a real nats-server: calls whose owner stopped renewing are claimed again.

A "dead" owner is a lease that is never renewed; the gateway's lease marks the call
as live. Leases last 1 s here (``VB_CALL_LEASE_TTL_S``), so each case takes a few.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    EndReason,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.streams import CALL_OWNERS, owner_key
from voicebus.runtime.claims import CallClaims
from voicebus.runtime.leases import GATEWAY, CallLeases
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service
from voicebus.runtime.settings import ServiceSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TTL_S = 1.0


class _Settings(ServiceSettings):
    service_name = "media"
    default_http_port = 8081


class _Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.lost: list[str] = []
        self.gateway_lost: list[str] = []
        self.fail_next = False

    async def on_start(self, event: CallStarted) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("start failed")
        self.started.append(event.call_id)

    async def on_lost(self, call_id: str) -> None:
        self.lost.append(call_id)

    async def on_gateway_lost(self, event: CallStarted) -> None:
        self.gateway_lost.append(event.call_id)


@pytest.fixture
async def instance(
    embedded_nats_factory: Callable[..., Any],
) -> AsyncIterator[tuple[Service, CallClaims, _Recorder]]:
    server = embedded_nats_factory()
    seen = _Recorder()
    settings = _Settings(nats_url=server.url, instance_id="m1", call_lease_ttl_s=TTL_S)
    service = Service(settings)
    claims = CallClaims(
        service,
        seen.on_start,
        on_lost=seen.on_lost,
        take_over=True,
        on_gateway_lost=seen.on_gateway_lost,
    )
    await service.start()
    try:
        yield service, claims, seen
    finally:
        await service.stop()


async def _leases(service: Service, name: str, instance: str) -> CallLeases:
    kv = await service.js.key_value(CALL_OWNERS.bucket)
    return CallLeases(kv, name, instance, ttl_s=TTL_S)


async def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def _started(call_id: str) -> CallStarted:
    return CallStarted(
        tenant_id="acme",
        call_id=call_id,
        source="test/1",
        data=CallStartedData(
            direction="inbound", provider="twilio", agent_id="demo", gateway_instance="gw"
        ),
    )


async def test_the_bucket_ttl_comes_from_the_settings(
    instance: tuple[Service, CallClaims, _Recorder],
) -> None:
    service, _claims, _seen = instance
    kv = await service.js.key_value(CALL_OWNERS.bucket)
    assert (await kv.status()).ttl == TTL_S


async def test_a_live_call_whose_owner_died_is_taken_over_and_a_stolen_one_let_go(
    instance: tuple[Service, CallClaims, _Recorder],
) -> None:
    service, claims, seen = instance
    call = new_id()
    dead = await _leases(service, "media", "dead")
    assert await dead.claim(call)  # owns it first, then never renews
    gateway = await _leases(service, GATEWAY, "gw")
    assert await gateway.claim(call)
    gateway.start()
    try:
        await publish_event(service.broker, _started(call))
        await _until(lambda: seen.started == [call])
        assert call in claims.leases.held
        assert await claims.leases.owner(call) == "m1"

        # Another instance takes the lease (it had expired, say): the renewal notices.
        kv = await service.js.key_value(CALL_OWNERS.bucket)
        await kv.put(owner_key("media", call), b"thief")
        await _until(lambda: seen.lost == [call])
        assert call not in claims.leases.held
    finally:
        await gateway.stop()


async def test_an_ended_call_is_not_taken_over(
    instance: tuple[Service, CallClaims, _Recorder],
) -> None:
    service, claims, seen = instance
    call = new_id()
    dead = await _leases(service, "media", "dead")
    assert await dead.claim(call)
    await publish_event(service.broker, _started(call))
    ended = CallEnded(
        tenant_id="acme",
        call_id=call,
        source="test/1",
        data=CallEndedData(reason=EndReason.CALLER_HANGUP),
    )
    await publish_event(service.broker, ended)
    gateway = await _leases(service, GATEWAY, "gw")  # died between the end and its release
    assert await gateway.claim(call)
    gateway.start()
    try:
        await asyncio.sleep(4 * TTL_S)
        assert await claims.take_over(call) is False
        assert seen.started == []
    finally:
        await gateway.stop()


async def test_a_call_whose_gateway_lease_expired_is_reported(
    instance: tuple[Service, CallClaims, _Recorder],
) -> None:
    service, claims, seen = instance
    call = new_id()
    gateway = await _leases(service, GATEWAY, "gw")
    assert await gateway.claim(call)  # and then the gateway dies: no renewal
    await publish_event(service.broker, _started(call))
    await _until(lambda: seen.started == [call])
    await _until(lambda: call in seen.gateway_lost)
    assert call in claims.leases.held  # ending the call is the callback's decision


async def test_a_claim_whose_start_failed_is_let_go_and_claimed_again(
    instance: tuple[Service, CallClaims, _Recorder],
) -> None:
    service, claims, seen = instance
    call = new_id()
    seen.fail_next = True
    await publish_event(service.broker, _started(call))  # fails once, then redelivered
    await _until(lambda: seen.started == [call])
    assert call in claims.leases.held
