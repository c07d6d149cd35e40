"""Browser calls through the real gateway: session endpoint, ``WS /ws/browser``, real NATS."""

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
    profile,
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
from voicebus.contracts.rpc import AGENTS_LIST, AgentsPage, ListAgents
from voicebus.gateway.metrics import WS_MESSAGES_IGNORED

pytestmark = pytest.mark.integration

AGENT = "demo"
FORMAT = {"encoding": "f32le", "sample_rate": 48000}


def ignored(reason: str) -> float:
    return WS_MESSAGES_IGNORED.labels("browser", reason)._value.get()  # type: ignore[no-any-return]


async def new_session(gw: RunningGateway, agent: str = AGENT) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.base_url) as client:
        return await client.post("/browser/session", json={"agent_id": agent})


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
    reply = await new_session(gw)
    assert reply.status_code == 200
    session = reply.json()
    call_id = session["call_id"]
    initiated = await events.one("call.initiated.v1", call_id)
    assert isinstance(initiated, CallInitiated)
    assert initiated.data.provider == "browser"

    audio_in: list[Msg] = []

    async def on_audio(msg: Msg) -> None:
        audio_in.append(msg)

    await gw.nc.subscribe(subjects.audio_in(call_id), cb=on_audio)
    before_start = ignored("before_start")
    async with connect(session["ws_url"]) as ws:
        page = Page(ws)
        await ws.send(bytes(3840))  # audio before the start: counted, ignored
        await ws.send(json.dumps({"type": "start", "parameters": session["parameters"],
                                  "format": FORMAT}))  # fmt: skip
        started = await events.one("call.started.v1", call_id)
        assert isinstance(started, CallStarted)
        assert started.data.provider == "browser"
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
            tenant_id="default",
            call_id=call_id,
            source="media/test",
            data=ClearData(utterance_id="a1"),
        )
        await wait_for(lambda: len(page.audio) == 5 and bool(page.of("mark")))
        await gw.nc.publish(
            subjects.ctl(call_id, subjects.CtlVerb.CLEAR), clear.model_dump_json().encode()
        )
        heard = TranscriptFinal(
            tenant_id="default",
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


async def test_unknown_agent_is_refused(running_gateway: RunningGateway) -> None:
    await FakeOrchestrator([AGENT]).start(running_gateway.nc)
    reply = await new_session(running_gateway, "nobody")
    assert reply.status_code == 404
    reply = await new_session(running_gateway, "not an id")
    assert reply.status_code == 422


async def test_a_forged_start_is_refused(running_gateway: RunningGateway) -> None:
    await FakeOrchestrator([AGENT]).start(running_gateway.nc)
    session = (await new_session(running_gateway)).json()
    params = {**session["parameters"], "agent_id": "someone-else"}  # the signature breaks
    async with connect(session["ws_url"]) as ws:
        await ws.send(json.dumps({"type": "start", "parameters": params, "format": FORMAT}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 15)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


async def test_the_page_and_its_assets_are_served(running_gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=running_gateway.base_url) as client:
        page = await client.get("/browser")
        assert page.status_code == 200
        assert "/browser/static/app.js" in page.text
        for name in ("app.js", "capture-worklet.js", "playback-worklet.js", "style.css"):
            asset = await client.get(f"/browser/static/{name}")
            assert asset.status_code == 200, name
        assert (await client.get("/browser/static/..%2Fcodec.py")).status_code == 404
        assert (await client.get("/browser/static/routes.py")).status_code == 404


async def test_the_page_lists_the_orchestrators_agents(running_gateway: RunningGateway) -> None:
    nc = running_gateway.nc
    url = f"{running_gateway.base_url}/browser/agents"
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 503  # nobody answers yet

        async def answer(msg: Msg) -> None:
            request = ListAgents.model_validate_json(msg.data)
            assert request.tenant_id == "default"
            page = AgentsPage(ok=True, agents=[profile("demo"), profile("sales")])
            await msg.respond(page.model_dump_json().encode())

        await nc.subscribe(AGENTS_LIST, cb=answer)
        await nc.flush()
        reply = await client.get(url)
    assert reply.status_code == 200
    assert reply.json() == [{"agent_id": "demo", "name": "demo"},
                            {"agent_id": "sales", "name": "sales"}]  # fmt: skip


async def test_a_gateway_without_the_page_serves_neither_page_nor_socket(
    embedded_nats_factory: Any,
) -> None:
    async with serve_gateway(embedded_nats_factory().url, browser_page=False) as gw:
        async with httpx.AsyncClient(base_url=gw.base_url) as client:
            assert (await client.get("/browser")).status_code == 404
            assert (
                await client.post("/browser/session", json={"agent_id": AGENT})
            ).status_code == 404
        with pytest.raises(InvalidStatus) as refused:  # the socket does not exist either
            async with connect(gw.settings.media_ws_url("/ws/browser")):
                pass
        assert refused.value.response.status_code == 404
