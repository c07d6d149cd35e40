"""Browser calls through the real gateway: ``vb.rpc.gateway.sessions.create`` (what the edge
asks), ``WS /ws/browser``, real NATS."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import numpy as np
import pytest
from gateway_kit import (
    EventLog,
    FakeOrchestrator,
    RunningGateway,
    serve_gateway,
    wait_for,
)
from nats.aio.msg import Msg
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voicebus.contracts import subjects
from voicebus.contracts.audio import decode_frame, encode_headers
from voicebus.contracts.commands import Clear, ClearData
from voicebus.contracts.events import (
    CallEnded,
    CallInitiated,
    CallStarted,
    EndReason,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.telephony import (
    SESSIONS_CREATE,
    BrowserSession,
    CreateSession,
    SessionReply,
)
from voicebus.gateway.metrics import WS_MESSAGES_IGNORED
from voicebus.runtime.rpc import RemoteError, RpcClient

pytestmark = pytest.mark.integration

AGENT = "demo"
FORMAT = {"encoding": "f32le", "sample_rate": 48000}


def ignored(reason: str) -> float:
    return WS_MESSAGES_IGNORED.labels("browser", reason)._value.get()  # type: ignore[no-any-return]


async def new_session(
    gw: RunningGateway, agent: str = AGENT, tenant: str = "default", **context: str
) -> BrowserSession:
    """What the edge does for the page: ask the gateway over the bus."""
    request = CreateSession(tenant_id=tenant, agent_id=agent, context=context)
    reply = await RpcClient(gw.nc, timeout_s=5).ask(SESSIONS_CREATE, request, SessionReply)
    assert reply.session is not None
    return reply.session


class Page:
    """The page's side of the WebSocket: every message it received."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.audio: list[bytes] = []
        self.control: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.audio.append(message)
                else:
                    self.control.append(json.loads(message))
        except ConnectionClosed:
            pass

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.control if m.get("type") == kind]


async def test_a_browser_call_end_to_end_on_the_bus(running_gateway: RunningGateway) -> None:
    gw = running_gateway
    await FakeOrchestrator([AGENT]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    session = await new_session(gw, tenant="acme", customer_name="Ada")
    call_id = session.call_id
    assert session.ws_url == gw.settings.media_ws_url("/ws/browser")
    assert session.expires_in_s == gw.settings.stream_token_ttl_s
    initiated = await events.one("call.initiated.v1", call_id)
    assert isinstance(initiated, CallInitiated)
    assert initiated.data.provider == "browser"
    assert initiated.tenant_id == "acme"
    assert initiated.data.context == {"customer_name": "Ada"}

    audio_in: list[Msg] = []

    async def on_audio(msg: Msg) -> None:
        audio_in.append(msg)

    await gw.nc.subscribe(subjects.audio_in(call_id), cb=on_audio)
    before_start = ignored("before_start")
    async with connect(session.ws_url) as ws:
        page = Page(ws)
        await ws.send(bytes(3840))  # audio before the start: counted, ignored
        await ws.send(json.dumps({"type": "start", "parameters": session.parameters,
                                  "format": FORMAT}))  # fmt: skip
        started = await events.one("call.started.v1", call_id)
        assert isinstance(started, CallStarted)
        assert started.data.provider == "browser"
        assert started.tenant_id == "acme"
        assert started.data.audio.sample_rate == 16000
        assert ignored("before_start") == before_start + 1

        # Caller audio: 20 ms Float32 at 48 kHz in, 20 ms PCM16 at 16 kHz on the bus.
        tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(48000) / 48000)).astype("<f4")
        for i in range(0, len(tone), 960):
            await ws.send(tone[i : i + 960].tobytes())
        await wait_for(lambda: sum(len(m.data) for m in audio_in) >= 45 * 640)
        frames = [decode_frame(m.data, m.headers) for m in audio_in]
        assert {f.sample_rate for f in frames} == {16000}
        assert {len(f.pcm) % 640 for f in frames} == {0}  # whole 20 ms frames
        assert [f.seq for f in frames] == list(range(len(frames)))

        # Agent audio, marks, clear and the transcript reach the page.
        for seq in range(5):
            headers = encode_headers(16000, seq, seq * 20, utterance_id="a1")
            await gw.nc.publish(subjects.audio_out(call_id), bytes(640), headers=headers)
        clear = Clear(
            tenant_id="acme",
            call_id=call_id,
            source="media/test",
            data=ClearData(utterance_id="a1"),
        )
        await wait_for(lambda: len(page.audio) == 5 and bool(page.of("mark")))
        await gw.nc.publish(
            subjects.ctl(call_id, subjects.CtlVerb.CLEAR), clear.model_dump_json().encode()
        )
        heard = TranscriptFinal(
            tenant_id="acme",
            call_id=call_id,
            source="media/test",
            data=TranscriptFinalData(utterance_id="u1", text="hello", start_ms=0, end_ms=900),
        )
        await gw.nc.publish(heard.subject, heard.model_dump_json().encode())
        await wait_for(lambda: bool(page.of("clear")) and bool(page.of("transcript")))
        assert {len(a) for a in page.audio} == {640}
        assert page.of("transcript")[0]["text"] == "hello"

        # Garbage is counted, never fatal.
        bad_json = ignored("malformed_json")
        await ws.send("{nope")
        await ws.send(bytes(7))
        await wait_for(lambda: ignored("malformed_json") == bad_json + 1)

        await ws.send(json.dumps({"type": "stop"}))
        ended = await events.one("call.ended.v1", call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.CALLER_HANGUP


async def test_an_unknown_agent_is_refused_with_a_call_error(
    running_gateway: RunningGateway,
) -> None:
    await FakeOrchestrator([AGENT]).start(running_gateway.nc)
    events = await EventLog().start(running_gateway.nc)
    with pytest.raises(RemoteError) as refused:
        await new_session(running_gateway, "nobody")
    assert (refused.value.status, refused.value.code) == (404, "agent_not_found")
    error = await events.one("call.error.v1")
    assert error.tenant_id == "default"
    # A body the contract refuses (what a buggy asker might send) is 422 naming the field.
    raw = json.dumps({"tenant_id": "default", "agent_id": "not an id"}).encode()
    answer = await running_gateway.nc.request(SESSIONS_CREATE, raw, timeout=5)
    invalid = SessionReply.model_validate_json(answer.data)
    assert invalid.error is not None
    assert invalid.error.status == 422
    assert "agent_id" in invalid.error.message


async def test_a_forged_start_is_refused(running_gateway: RunningGateway) -> None:
    await FakeOrchestrator([AGENT]).start(running_gateway.nc)
    session = await new_session(running_gateway)
    params = {**session.parameters, "agent_id": "someone-else"}  # the signature breaks
    async with connect(session.ws_url) as ws:
        await ws.send(json.dumps({"type": "start", "parameters": params, "format": FORMAT}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 15)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


async def test_the_page_is_not_the_gateways(running_gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=running_gateway.base_url) as client:
        for path in ("/browser", "/browser/agents", "/browser/static/app.js", "/api/v1/calls"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.post("/browser/session", json={"agent_id": AGENT})).status_code == 404


async def test_a_gateway_without_browser_calls_refuses_sessions_and_serves_no_socket(
    embedded_nats_factory: Any,
) -> None:
    async with serve_gateway(embedded_nats_factory().url, browser_calls=False) as gw:
        await FakeOrchestrator([AGENT]).start(gw.nc)
        with pytest.raises(RemoteError) as refused:
            await new_session(gw)
        assert (refused.value.status, refused.value.code) == (409, "browser_calls_disabled")
        with pytest.raises(InvalidStatus) as absent:
            async with connect(gw.settings.media_ws_url("/ws/browser")):
                pass
        assert absent.value.response.status_code == 404  # no such socket on the media server
