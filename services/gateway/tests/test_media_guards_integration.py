"""The media path's guards, on the real lean server and a real NATS.

A stream token is single-use, bound to its purpose and its provider: a replayed
``start`` (a second socket for a live call) is refused while the first call goes
on untouched, and parameters signed for a callback or for another provider do
not start a stream. A socket that never sends a valid start is closed, oversized
frames are refused, and a process at its connection cap answers the upgrade
with HTTP 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from gateway_kit import (
    STREAM_SECRET,
    EventLog,
    FakeOrchestrator,
    RunningGateway,
    TwilioPeer,
    post_webhook,
    random_ulaw,
    serve_gateway,
    twiml_stream,
    wait_for,
)
from nats.aio.msg import Msg
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voicebus.contracts import subjects
from voicebus.contracts.events import CallError, ErrorCode
from voicebus.gateway.parameters import (
    CALLBACK,
    CallIdentity,
    stream_purpose,
    to_parameters,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _refused(reason: str) -> float:
    value = REGISTRY.get_sample_value("voicebus_gateway_ws_refused_total", {"reason": reason})
    return value or 0.0


async def _call(gw: RunningGateway) -> tuple[str, dict[str, str], EventLog]:
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    url, params = twiml_stream((await post_webhook(gw, "demo")).text)
    return url, params, events


async def _security_errors(events: EventLog, n: int) -> list[CallError]:
    await wait_for(lambda: len(_errors(events)) >= n)
    return _errors(events)


def _errors(events: EventLog) -> list[CallError]:
    return [
        e
        for e in events.of("call.error.v1")
        if isinstance(e, CallError) and e.data.code is ErrorCode.SIGNATURE_INVALID
    ]


async def test_a_replayed_start_is_refused_and_the_live_call_goes_on(
    running_gateway: RunningGateway,
) -> None:
    gw = running_gateway
    url, params, events = await _call(gw)
    call_id = params["call_id"]
    audio_in: list[Msg] = []

    async def on_in(msg: Msg) -> None:
        audio_in.append(msg)

    await gw.nc.subscribe(subjects.audio_in(call_id), cb=on_in)
    first = await TwilioPeer.open(url)
    await first.connected()
    await first.start(params)
    await events.one("call.started.v1", call_id)

    replay = await TwilioPeer.open(url)  # the same signed start, on a second socket
    await replay.connected()
    await replay.start(params)
    async with asyncio.timeout(15):
        await replay.closed.wait()
    assert replay.close_code == 1008
    errors = await _security_errors(events, 1)
    assert "already started" in errors[-1].data.message

    for chunk in range(5):  # the first socket still carries the call
        await first.media(random_ulaw(), chunk, chunk * 20)
    await wait_for(lambda: len(audio_in) >= 5)
    assert not first.closed.is_set()
    await asyncio.sleep(0.5)
    assert events.of("call.ended.v1", call_id) == []  # the replay's close ended nothing
    assert len(events.of("call.started.v1", call_id)) == 1

    await first.stop()
    await events.one("call.ended.v1", call_id)
    await first.close()


async def test_a_replay_after_the_call_ended_is_refused_too(
    running_gateway: RunningGateway,
) -> None:
    gw = running_gateway
    url, params, events = await _call(gw)
    call_id = params["call_id"]
    first = await TwilioPeer.open(url)
    await first.start(params)
    await events.one("call.started.v1", call_id)
    await first.stop()
    await events.one("call.ended.v1", call_id)
    await first.close()

    again = await TwilioPeer.open(url)
    await again.start(params)
    async with asyncio.timeout(15):
        await again.closed.wait()
    assert again.close_code == 1008
    await asyncio.sleep(0.3)
    assert len(events.of("call.started.v1", call_id)) == 1


def _signed(purpose: str) -> dict[str, str]:
    identity = CallIdentity(call_id=f"c{time.time_ns()}", tenant_id="default", agent_id="demo")
    return to_parameters(identity, STREAM_SECRET.encode(), time.time(), purpose=purpose)


@pytest.mark.parametrize(
    "purpose", [CALLBACK, stream_purpose("plivo"), stream_purpose("browser")], ids=str
)
async def test_parameters_signed_for_another_purpose_or_provider_start_nothing(
    running_gateway: RunningGateway, purpose: str
) -> None:
    gw = running_gateway
    _, _, events = await _call(gw)
    params = _signed(purpose)
    peer = await TwilioPeer.open(f"{gw.ws_url}/ws/twilio")
    await peer.start(params)
    async with asyncio.timeout(15):
        await peer.closed.wait()
    assert peer.close_code == 1008
    errors = await _security_errors(events, 1)
    assert "does not match" in errors[-1].data.message
    assert events.of("call.started.v1", params["call_id"]) == []


async def test_a_socket_without_a_valid_start_is_closed(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    async with serve_gateway(embedded_nats_factory().url, ws_start_timeout_s=1.0) as gw:
        before = _refused("no_start")
        peer = await TwilioPeer.open(f"{gw.ws_url}/ws/twilio")
        await peer.connected()  # a valid message, but not a start
        async with asyncio.timeout(10):
            await peer.closed.wait()
        assert peer.close_code == 1008
        assert _refused("no_start") == before + 1


async def test_oversized_frames_are_refused(running_gateway: RunningGateway) -> None:
    gw = running_gateway
    limit = gw.settings.ws_max_message_bytes
    async with connect(f"{gw.ws_url}/ws/twilio", max_size=None) as ws:
        await ws.send("x" * (4 * limit + 1))  # past the frame cap: the socket is closed
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_a_socket_over_its_byte_rate_is_closed(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    rate = 16 * 1024
    async with serve_gateway(embedded_nats_factory().url, ws_max_bytes_per_s=rate) as gw:
        before = _refused("rate")
        async with connect(f"{gw.ws_url}/ws/twilio") as ws:
            for _ in range(100):  # 3 x the burst, at once (sends are buffered locally)
                await ws.send("{" + " " * 1000 + "}")
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        assert _refused("rate") == before + 1


async def test_past_the_connection_cap_the_upgrade_is_a_503(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    async with serve_gateway(embedded_nats_factory().url, ws_max_connections=2) as gw:
        url = f"{gw.ws_url}/ws/twilio"
        before = _refused("capacity")
        async with connect(url), connect(url):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url):
                    pass
            assert refused.value.response.status_code == 503
            assert refused.value.response.headers["Retry-After"] == "1"
        assert _refused("capacity") == before + 1
        await wait_for(lambda: gw_open(gw) == 0)
        async with connect(url):  # room again once the others closed
            pass


def gw_open(gw: RunningGateway) -> int:
    value = REGISTRY.get_sample_value("voicebus_gateway_ws_connections")
    return int(value or 0)


async def test_unknown_paths_are_a_404(running_gateway: RunningGateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{running_gateway.ws_url}/ws/nobody"):
            pass
    assert refused.value.response.status_code == 404
