"""A NATS outage longer than the client's buffer drops caller frames, never the call."""

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
    random_ulaw,
    serve_gateway,
    twiml_stream,
    wait_for,
)
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from voicebus.contracts import subjects
from voicebus.gateway.metrics import IgnoreReason

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

# ~420 bytes per frame in the client's buffer (PCM and headers): well past its 2 MiB.
FRAMES_WHILE_DOWN = 8000


def _dropped() -> float:
    value = REGISTRY.get_sample_value(
        "voicebus_gateway_ws_messages_ignored_total",
        {"provider": "twilio", "reason": IgnoreReason.BUS_UNAVAILABLE.value},
    )
    return value or 0.0


async def test_the_call_outlives_a_nats_outage_that_fills_the_buffer(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    # The frames of the outage are sent at once, far faster than a caller speaks: the
    # per-socket byte-rate cap (tested on its own) would rightly close the socket.
    async with serve_gateway(server.url, ws_max_bytes_per_s=64 * 1024 * 1024) as gw:
        await FakeOrchestrator(["demo"]).start(gw.nc)
        events = await EventLog().start(gw.nc)
        url, params = twiml_stream((await post_webhook(gw, "demo")).text)
        call_id = params["call_id"]
        audio_in: list[Msg] = []

        async def on_in(msg: Msg) -> None:
            audio_in.append(msg)

        await gw.nc.subscribe(subjects.audio_in(call_id), cb=on_in)
        await gw.nc.flush()
        peer = await TwilioPeer.open(url)
        await peer.connected()
        await peer.start(params)
        await events.one("call.started.v1", call_id)
        dropped_before = _dropped()

        await asyncio.to_thread(server.stop)
        await wait_for(lambda: not gw.service.nc.is_connected)
        for chunk in range(FRAMES_WHILE_DOWN):
            await peer.media(random_ulaw(), chunk, chunk * 20)
        await wait_for(lambda: _dropped() > dropped_before)
        assert not peer.closed.is_set()

        await asyncio.to_thread(server.start)
        await wait_for(lambda: gw.service.nc.is_connected and gw.nc.is_connected, timeout=30)
        received = len(audio_in)
        for chunk in range(FRAMES_WHILE_DOWN, FRAMES_WHILE_DOWN + 50):
            await peer.media(random_ulaw(), chunk, chunk * 20)
        await wait_for(lambda: len(audio_in) >= received + 50, timeout=30)
        assert not peer.closed.is_set()

        await peer.stop()
        ended = await events.one("call.ended.v1", call_id)
        assert ended.call_id == call_id
        await peer.close()
