"""Garbage on the media WebSocket is counted and ignored; it never ends the call."""

from __future__ import annotations

import asyncio
import json

import pytest
from gateway_kit import (
    EventLog,
    FakeOrchestrator,
    RunningGateway,
    TwilioPeer,
    post_webhook,
    random_ulaw,
    twiml_stream,
    wait_for,
)
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from voicebus.contracts import subjects
from voicebus.contracts.events import CallError, ErrorCode

pytestmark = pytest.mark.integration

METRIC = "voicebus_gateway_ws_messages_ignored_total"


def ignored(reason: str) -> float:
    return REGISTRY.get_sample_value(METRIC, {"provider": "twilio", "reason": reason}) or 0.0


async def _setup(gw: RunningGateway) -> tuple[str, dict[str, str], EventLog]:
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    url, params = twiml_stream((await post_webhook(gw, "demo")).text)
    return url, params, events


async def test_garbage_is_counted_and_the_call_goes_on(running_gateway: RunningGateway) -> None:
    gw = running_gateway
    url, params, events = await _setup(gw)
    call_id = params["call_id"]
    audio_in: list[Msg] = []

    async def on_in(msg: Msg) -> None:
        audio_in.append(msg)

    await gw.nc.subscribe(subjects.audio_in(call_id), cb=on_in)
    reasons = ["before_start", "malformed_json", "unknown_event", "invalid_message", "oversize",
               "binary", "duplicate_start", "unknown_mark", "unexpected_track"]  # fmt: skip
    before = {reason: ignored(reason) for reason in reasons}
    peer = await TwilioPeer.open(url)
    await peer.connected()
    await peer.media(random_ulaw(), chunk=1, timestamp=0)  # media before start
    await peer.start(params)
    await events.one("call.started.v1", call_id)

    await peer.send("{not json")
    await peer.send("")
    await peer.send(json.dumps({"event": "transcription", "text": "hi"}))
    await peer.send(json.dumps([1, 2, 3]))
    await peer.send(json.dumps({"event": "media", "media": {"payload": "%%%not base64"}}))
    await peer.send(json.dumps({"event": "mark", "mark": {}}))
    await peer.send(json.dumps({"event": "media", "media": {"payload": "A" * 70_000}}))
    await peer.send(b"\x00\x01binary")
    await peer.start(params)  # a second start
    await peer.mark("never-sent")
    await peer.send(json.dumps({"event": "media",
                                "media": {"track": "outbound", "payload": "AAAA"}}))  # fmt: skip
    await peer.media(random_ulaw(), chunk=2, timestamp=20)  # the call still flows

    await wait_for(lambda: len(audio_in) == 1)
    expected = {"before_start": 1, "malformed_json": 2, "unknown_event": 1,
                "invalid_message": 3, "oversize": 1, "binary": 1, "duplicate_start": 1,
                "unknown_mark": 1, "unexpected_track": 1}  # fmt: skip
    await wait_for(lambda: all(ignored(r) - before[r] == n for r, n in expected.items()))
    assert not peer.closed.is_set()
    assert events.of("call.ended.v1", call_id) == []
    assert len(events.of("call.started.v1", call_id)) == 1

    await peer.stop()
    await events.one("call.ended.v1", call_id)
    await peer.close()


async def test_forged_start_is_refused(running_gateway: RunningGateway) -> None:
    gw = running_gateway
    url, params, events = await _setup(gw)
    before = ignored("unauthorized_start")
    peer = await TwilioPeer.open(url)
    await peer.connected()
    await peer.start({**params, "tenant_id": "someone-else"})

    await asyncio.wait_for(peer.closed.wait(), timeout=15)
    assert peer.close_code == 1008
    error = await events.one("call.error.v1")
    assert isinstance(error, CallError)
    assert error.data.security is True
    assert error.data.code is ErrorCode.SIGNATURE_INVALID
    assert ignored("unauthorized_start") - before == 1
    await asyncio.sleep(0.3)
    assert events.of("call.started.v1") == []
    assert events.of("call.ended.v1") == []


async def test_start_without_parameters_is_refused(running_gateway: RunningGateway) -> None:
    gw = running_gateway
    url, _params, events = await _setup(gw)
    peer = await TwilioPeer.open(url)
    await peer.start({})
    await asyncio.wait_for(peer.closed.wait(), timeout=15)
    assert peer.close_code == 1008
    await events.one("call.error.v1")
    assert events.of("call.started.v1") == []
