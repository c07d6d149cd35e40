"""Graceful drain on SIGTERM: no new media WebSocket, live calls go on up to a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from gateway_kit import (
    EventLog,
    FakeOrchestrator,
    TwilioPeer,
    post_webhook,
    serve_gateway,
    twiml_stream,
)

from voicebus.contracts.events import CallEnded, EndReason

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def _refused(url: str) -> bool:
    try:
        peer = await TwilioPeer.open(url)
    except OSError:
        return True
    await peer.ws.close()
    return False


async def test_a_live_call_finishes_during_the_drain_and_new_ones_are_refused(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    async with serve_gateway(server.url, drain_timeout_s=60.0) as gw:
        await FakeOrchestrator(["demo"]).start(gw.nc)
        events = await EventLog().start(gw.nc)
        url, params = twiml_stream((await post_webhook(gw, "demo")).text)
        call_id = params["call_id"]
        peer = await TwilioPeer.open(url)
        await peer.connected()
        await peer.start(params)
        await events.one("call.started.v1", call_id)

        stopping = asyncio.create_task(gw.service.stop())  # what SIGTERM runs
        async with asyncio.timeout(10):
            while not await _refused(url):  # the listener closes first
                await asyncio.sleep(0.05)
        assert not stopping.done()  # waiting for the live call
        assert not peer.closed.is_set()

        await peer.stop()  # the caller hangs up: the call ends on its own
        async with asyncio.timeout(20):
            await stopping
        ended = await events.one("call.ended.v1", call_id)
        assert isinstance(ended, CallEnded)
        assert ended.data.reason is EndReason.CALLER_HANGUP


async def test_calls_still_live_at_the_bound_are_ended(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    async with serve_gateway(server.url, drain_timeout_s=0.5) as gw:
        await FakeOrchestrator(["demo"]).start(gw.nc)
        events = await EventLog().start(gw.nc)
        url, params = twiml_stream((await post_webhook(gw, "demo")).text)
        call_id = params["call_id"]
        peer = await TwilioPeer.open(url)
        await peer.connected()
        await peer.start(params)
        await events.one("call.started.v1", call_id)

        async with asyncio.timeout(30):
            await gw.service.stop()
            await peer.closed.wait()
        assert peer.close_code == 1012  # service restart: the provider may redial elsewhere
        ended = await events.one("call.ended.v1", call_id)
        assert isinstance(ended, CallEnded)
        assert ended.data.reason is EndReason.GATEWAY_LOST
