"""Exotel on a real nats-server: inbound through the Voicebot applet's dynamic URL (Basic auth),
AgentStream audio both ways (agent audio in ≥3,200-byte chunks, marks), and outbound through
``calls/connect`` on the devkit's stand-in Exotel API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from gateway_kit import EventLog, FakeOrchestrator, RunningGateway, serve_gateway, wait_for
from nats.aio.msg import Msg
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from voicebus.contracts import subjects
from voicebus.contracts.audio import AudioFrame
from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import CallEnded, CallStarted, Direction, EndReason
from voicebus.devkit.caller.exotel import ExotelCaller, ExotelProtocol
from voicebus.devkit.caller.session import StreamCaller
from voicebus.devkit.caller.voices import ToneVoice
from voicebus.devkit.carriers import DialedCall
from voicebus.devkit.carriers.exotel import ExotelCarrier

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CREDENTIALS = ("voicebus", "exotel-webhook-secret-0123")
SID = "acme1"


@dataclass
class Rig:
    gw: RunningGateway
    carrier: ExotelCarrier
    events: EventLog

    async def originate(self, to: str, **data: Any) -> str:
        command = OriginateCall(
            tenant_id="default", call_id=f"ex-{to[-4:]}-{len(self.carrier.calls)}",
            source="test/1",
            data=OriginateCallData(agent_id="demo", to_number=to, provider="exotel", **data),
        )  # fmt: skip
        js = self.gw.nc.jetstream()
        await js.publish(command.subject, command.to_bytes(), headers={"Nats-Msg-Id": command.id})
        return command.call_id

    async def ended(self, call_id: str) -> CallEnded:
        event = await self.events.one("call.ended.v1", call_id)
        assert isinstance(event, CallEnded)
        return event


def _collect(into: list[Msg]) -> Callable[[Msg], Awaitable[None]]:
    async def on_msg(msg: Msg) -> None:
        into.append(msg)

    return on_msg


async def _short_call(call: DialedCall, caller: StreamCaller) -> None:
    await caller.wait_for_agent_audio(timeout=0.6)


@pytest_asyncio.fixture
async def rig(
    embedded_nats_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Rig]:
    monkeypatch.setenv("VB_GATEWAY_EXOTEL_WEBHOOK_USER", CREDENTIALS[0])
    monkeypatch.setenv("VB_GATEWAY_EXOTEL_WEBHOOK_PASSWORD", CREDENTIALS[1])
    for name, value in {"ACCOUNT_SID": SID, "API_KEY": "key1", "API_TOKEN": "token1",
                        "CALLER_ID": "+918047491899"}.items():  # fmt: skip
        monkeypatch.setenv(f"VB_GATEWAY_EXOTEL_{name}", value)
    async with serve_gateway(embedded_nats_factory().url) as gw:
        carrier = ExotelCarrier(
            account_sid=SID, api_key="key1", api_token="token1", gateway_url=gw.base_url,
            callee=_short_call,
        )  # fmt: skip
        monkeypatch.setenv("VB_GATEWAY_EXOTEL_API_BASE_URL", carrier.base_url)
        await FakeOrchestrator(["demo"]).start(gw.nc)
        events = await EventLog().start(gw.nc)
        async with carrier:
            yield Rig(gw, carrier, events)


async def test_inbound_call_streams_both_ways(rig: Rig) -> None:
    gw = rig.gw
    played: list[Msg] = []
    caller = ExotelCaller(gw.base_url, CREDENTIALS, "demo", {"order": "1234"}, voice=ToneVoice())
    await caller.start()
    call_id = caller.call_id
    assert call_id is not None
    await gw.nc.subscribe(subjects.audio_played(call_id), cb=_collect(played))
    started = await rig.events.one("call.started.v1", call_id)
    assert isinstance(started, CallStarted)
    assert started.data.direction is Direction.INBOUND
    assert started.data.context == {"order": "1234"}
    assert started.data.provider_call_id == caller.call_sid
    inbound: list[Msg] = []
    await gw.nc.subscribe(subjects.audio_in(call_id), cb=_collect(inbound))
    await wait_for(lambda: len(inbound) >= 10)  # 100 ms chunks arrive as 20 ms frames
    assert {len(m.data) for m in inbound} == {320}
    for seq in range(13):  # 260 ms of agent audio: two full chunks and a padded tail
        frame = AudioFrame(b"\x10\x00" * 160, 8000, seq, seq * 20, "u1", last=seq == 12)
        await gw.nc.publish(subjects.audio_out(call_id), frame.pcm, headers=frame.headers())
    assert await caller.wait_for_agent_audio(ms=260, timeout=15)
    await wait_for(lambda: len(played) >= 2)
    assert isinstance(caller.protocol, ExotelProtocol)
    assert caller.protocol.small_chunks == 0
    result = await caller.hang_up()
    assert result.marks_echoed
    ended = await rig.ended(call_id)
    assert ended.data.reason is EndReason.CALLER_HANGUP


async def test_inbound_without_credentials_is_refused(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.gw.base_url) as client:
        response = await client.get("/telephony/exotel/inbound/demo?CallSid=x")
        wrong = await client.get("/telephony/exotel/inbound/demo", auth=("voicebus", "nope"))
    assert (response.status_code, wrong.status_code) == (403, 403)
    with pytest.raises(InvalidStatus):
        async with connect(f"{rig.gw.ws_url}/ws/exotel"):
            pass


async def test_outbound_call_reaches_the_agent_with_its_context(rig: Rig) -> None:
    call_id = await rig.originate("+919876543210", context={"customer_name": "Ada"})
    ended = await rig.ended(call_id)
    started = await rig.events.one("call.started.v1", call_id)
    assert isinstance(started, CallStarted)
    assert started.data.direction is Direction.OUTBOUND
    assert started.data.context == {"customer_name": "Ada"}
    assert (started.data.from_number, started.data.to_number) == ("+918047491899", "+919876543210")
    await rig.events.one("call.ringing.v1", call_id)
    dialed = await rig.carrier.wait_ended()
    assert dialed.error is None
    assert dialed.progress() == ["ringing", "in-progress", "completed"]
    assert all(status == 200 for _, status in dialed.posted)
    assert dialed.from_number == "+918047491899"
    assert ended.data.reason is EndReason.CALLER_HANGUP


@pytest.mark.parametrize(
    ("to", "reason", "code"),
    [
        ("+919876540002", EndReason.BUSY, None),
        ("+919876540003", EndReason.NO_ANSWER, None),
        ("+919876540006", EndReason.PROVIDER_ERROR, "34002"),
    ],
)
async def test_outbound_failures(rig: Rig, to: str, reason: EndReason, code: str | None) -> None:
    call_id = await rig.originate(to)
    ended = await rig.ended(call_id)
    assert ended.data.reason is reason
    assert ended.data.provider_error_code == code
    assert rig.events.of("call.started.v1", call_id) == []
