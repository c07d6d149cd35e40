"""Garbage on a Plivo or Vobiz media WebSocket is counted and ignored; a stream without our
signed parameters is refused."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from gateway_kit import EventLog, FakeOrchestrator, RunningGateway, wait_for
from nats.aio.msg import Msg
from prometheus_client import REGISTRY
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voicebus.contracts import subjects
from voicebus.contracts.events import CallError
from voicebus.devkit.caller import plivo, vobiz
from voicebus.devkit.caller.protocol import StreamTarget

pytestmark = pytest.mark.integration

METRIC = "voicebus_gateway_ws_messages_ignored_total"
TOKEN = "dev-secret"  # the development placeholder the test gateway keeps


SIGNERS: dict[str, Callable[[str, dict[str, str], str], dict[str, str]]] = {
    "plivo": lambda url, form, nonce: {
        plivo.SIGNATURE_HEADER: plivo.sign(TOKEN, url, form, nonce),
        plivo.NONCE_HEADER: nonce,
    },
    "vobiz": lambda url, form, nonce: {
        vobiz.SIGNATURE_HEADER: vobiz.sign(TOKEN, url, nonce),
        vobiz.NONCE_HEADER: nonce,
    },
}


def ignored(provider: str, reason: str) -> float:
    return REGISTRY.get_sample_value(METRIC, {"provider": provider, "reason": reason}) or 0.0


async def answer(gw: RunningGateway, provider: str) -> StreamTarget:
    """Post the provider's signed answer webhook; the stream its XML names."""
    url = f"{gw.settings.public_url}/telephony/{provider}/inbound/demo"
    form = plivo.answer_params(call_uuid="c-1", from_number="+14155550100", to_number="+1415")
    nonce = plivo.new_nonce()
    headers = SIGNERS[provider](url, form, nonce)
    async with httpx.AsyncClient(base_url=gw.base_url) as client:
        response = await client.post(url.removeprefix(gw.base_url), data=form, headers=headers)
    assert response.status_code == 200, response.text
    target, _ = plivo.parse_answer(response.text)
    assert target is not None
    return target


async def receive_close(ws: ClientConnection) -> int | None:
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass
    return ws.close_code


@pytest.mark.parametrize("provider", ["plivo", "vobiz"])
async def test_garbage_is_counted_and_the_call_goes_on(
    running_gateway: RunningGateway, provider: str
) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    target = await answer(gw, provider)
    call_id = target.parameters["call_id"]
    audio_in: list[Msg] = []

    async def on_in(msg: Msg) -> None:
        audio_in.append(msg)

    await gw.nc.subscribe(subjects.audio_in(call_id), cb=on_in)
    expected = {"before_start": 1, "malformed_json": 1, "unknown_event": 1,
                "invalid_message": 3, "oversize": 1, "binary": 1, "duplicate_start": 1,
                "unknown_mark": 1, "unexpected_track": 1}  # fmt: skip
    before = {reason: ignored(provider, reason) for reason in expected}
    proto = plivo.PlivoProtocol(target.content_type, extra_headers=target.extra_headers)
    # Plivo's token travels in extraHeaders, never in the URL; Vobiz's stays in the URL.
    assert ("vb_token" in target.parameters) is (provider == "vobiz")
    assert (target.extra_headers is not None) is (provider == "plivo")
    silence = bytes(320)
    async with connect(target.url, max_size=None) as ws:
        await ws.send(proto.media(silence, 1, 0))  # before start
        for message in proto.opening(target.parameters):
            await ws.send(message)
        await events.one("call.started.v1", call_id)
        await ws.send("{not json")
        await ws.send(json.dumps({"event": "transcription", "text": "hi"}))
        await ws.send(json.dumps([1, 2, 3]))
        await ws.send(json.dumps({"event": "media", "media": {"payload": "%%%"}}))
        await ws.send(json.dumps({"event": "playedStream", "streamId": "x"}))
        await ws.send(json.dumps({"event": "media", "media": {"payload": "A" * 20_000}}))
        await ws.send(b"\x00\x01binary")
        await ws.send(proto.opening(target.parameters)[0])  # a second start
        await ws.send(proto.mark("never-sent"))
        await ws.send(json.dumps({"event": "media",
                                  "media": {"track": "outbound", "payload": "AAAA"}}))  # fmt: skip
        await ws.send(proto.media(silence, 2, 20))  # the call still flows

        await wait_for(lambda: len(audio_in) == 1)
        await wait_for(
            lambda: all(ignored(provider, r) - before[r] == n for r, n in expected.items())
        )
        assert events.of("call.ended.v1", call_id) == []


@pytest.mark.parametrize("provider", ["plivo", "vobiz"])
async def test_a_stream_without_signed_parameters_is_refused(
    running_gateway: RunningGateway, provider: str
) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    target = await answer(gw, provider)
    forged = target.url.replace("call_id=", "call_id=x")  # the token no longer matches
    proto = plivo.PlivoProtocol(target.content_type)
    for url in (target.url.split("?")[0], forged):
        async with connect(url) as ws:
            for message in proto.opening({}):
                await ws.send(message)
            assert await receive_close(ws) == 1008
    await wait_for(lambda: len(events.of("call.error.v1")) >= 2)
    errors = [e for e in events.of("call.error.v1") if isinstance(e, CallError)]
    assert all(e.data.security for e in errors)
    assert events.of("call.started.v1") == []
