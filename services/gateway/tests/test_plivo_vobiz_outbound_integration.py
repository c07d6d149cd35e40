"""Outbound Plivo and Vobiz calls through the real gateway on a real nats-server: the real
dialers (plivo SDK, Vobiz over httpx) call the devkit's stand-in carriers, whose callees
fetch the answer URL, stream media back and post signed status callbacks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from gateway_kit import EventLog, FakeOrchestrator, RunningGateway, wait_for

from voicebus.contracts import subjects
from voicebus.contracts.audio import AudioFrame
from voicebus.contracts.commands import (
    HangUp,
    OriginateCall,
    OriginateCallData,
    SendDtmf,
    SendDtmfData,
    Transfer,
    TransferData,
    TransferMode,
)
from voicebus.contracts.events import (
    AmdDetected,
    CallEnded,
    CallStarted,
    Direction,
    EndReason,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.caller import ToneVoice
from voicebus.devkit.caller.audio import tone
from voicebus.devkit.carriers.base import StandInCarrier
from voicebus.devkit.carriers.plivo import PlivoCarrier
from voicebus.devkit.carriers.vobiz import VobizCarrier
from voicebus.gateway.providers import get

pytestmark = pytest.mark.integration

CARRIERS: dict[str, type[PlivoCarrier]] = {"plivo": PlivoCarrier, "vobiz": VobizCarrier}
FROM = "+14155550100"


@pytest_asyncio.fixture(params=["plivo", "vobiz"])
async def carrier(
    request: pytest.FixtureRequest, running_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StandInCarrier]:
    name: str = request.param
    stand_in = CARRIERS[name](gateway_url=running_gateway.base_url, voice=ToneVoice())
    monkeypatch.setenv(f"VB_GATEWAY_{name.upper()}_API_URL", stand_in.base_url)
    async with stand_in:
        yield stand_in


async def originate(gw: RunningGateway, provider: str, to: str, *, amd: bool = False) -> str:
    call_id = new_id()
    command = OriginateCall(
        tenant_id="default",
        call_id=call_id,
        source="test/1",
        data=OriginateCallData(
            agent_id="demo",
            to_number=to,
            from_number=FROM,
            provider=provider,
            context={"customer": "Ada"},
            detect_machine=amd,
        ),
    )
    js = gw.nc.jetstream()
    await js.publish(command.subject, command.to_bytes(), headers={"Nats-Msg-Id": command.id})
    return call_id


async def test_an_answered_call(running_gateway: RunningGateway, carrier: StandInCarrier) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    call_id = await originate(gw, carrier.name, "+14155550199")

    started = await events.one("call.started.v1", call_id)
    assert isinstance(started, CallStarted)
    assert started.data.provider == carrier.name
    assert started.data.direction is Direction.OUTBOUND
    assert started.data.context == {"customer": "Ada"}
    assert started.data.audio.sample_rate == 8000
    await events.one("call.ringing.v1", call_id)
    (dialed,) = carrier.calls.values()
    assert started.data.provider_call_id == dialed.sid

    pcm = tone(400.0)
    for i in range(20):
        chunk = pcm[i * 320 : (i + 1) * 320]
        frame = AudioFrame(chunk, 8000, i, i * 20, "hello", last=i == 19)
        await gw.nc.publish(subjects.audio_out(call_id), chunk, headers=frame.headers())
    await wait_for(lambda: dialed.caller is not None and dialed.caller.result().heard_ms >= 300)

    # Keypad tones go through the provider's API.
    dtmf = SendDtmf(
        tenant_id="default", call_id=call_id, source="orch/o1", data=SendDtmfData(digits="12#")
    )
    await gw.nc.publish(dtmf.subject, dtmf.to_bytes())
    await wait_for(lambda: any(u.get("digits") == "12#" for u in dialed.updates))

    hang_up = HangUp(tenant_id="default", call_id=call_id, source="orch/o1")
    await gw.nc.publish(hang_up.subject, hang_up.to_bytes())

    ended = await events.one("call.ended.v1", call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.AGENT_HANGUP
    finished = await carrier.wait_ended(dialed.sid)
    assert finished.error is None
    assert finished.progress() == ["ringing", "answer", "completed"]
    assert all(status == 200 for _, status in finished.posted)
    assert finished.result is not None
    assert finished.result.protocol_errors == []
    assert finished.result.marks_received > 0
    assert len(events.of("call.ended.v1", call_id)) == 1


async def test_a_transfer_dials_the_target(
    running_gateway: RunningGateway, carrier: StandInCarrier
) -> None:
    # The Transfer API fetches the gateway's signed transfer URL; its XML dials the target.
    # Warm goes through cold (Plivo's confirmSound needs the target to press a key).
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    call_id = await originate(gw, carrier.name, "+14155550199")
    await events.one("call.started.v1", call_id)
    (dialed,) = carrier.calls.values()
    transfer = Transfer(
        tenant_id="default", call_id=call_id, source="orch/o1",
        data=TransferData(to_number="+14155550123", mode=TransferMode.WARM,
                          announcement="Ada asks about her order"),
    )  # fmt: skip
    await gw.nc.publish(transfer.subject, transfer.to_bytes())

    ended = await events.one("call.ended.v1", call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.TRANSFERRED
    finished = await carrier.wait_ended(dialed.sid)
    assert finished.error is None
    assert finished.transferred_to == "14155550123"
    (update,) = [u for u in finished.updates if "aleg_url" in u]
    assert update["legs"] == "aleg"
    assert f"/telephony/{carrier.name}/transfer/{call_id}?" in update["aleg_url"]
    assert finished.progress() == ["ringing", "answer", "transfer", "completed"]
    assert all(status == 200 for _, status in finished.posted)
    assert events.of("call.error.v1", call_id) == []


async def test_a_forged_transfer_url_is_refused(
    running_gateway: RunningGateway, carrier: StandInCarrier
) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    call_id = await originate(gw, carrier.name, "+14155550199")
    await events.one("call.started.v1", call_id)
    (dialed,) = carrier.calls.values()
    transfer = Transfer(
        tenant_id="default", call_id=call_id, source="orch/o1",
        data=TransferData(to_number="+14155550123"),
    )  # fmt: skip
    await gw.nc.publish(transfer.subject, transfer.to_bytes())
    await carrier.wait_ended(dialed.sid)
    url = next(u["aleg_url"] for u in dialed.updates if "aleg_url" in u)
    forged = url.replace("to_number=%2B14155550123", "to_number=%2B19005550000")
    assert forged != url
    assert isinstance(carrier, PlivoCarrier)
    form = carrier.form(dialed, CallStatus="in-progress", Event="Transfer")
    # Signed by the carrier, but the gateway's own signature no longer matches the target.
    response = await carrier.post(dialed, "forged", forged, form=form,
                                  headers=carrier.sign(forged, form))  # fmt: skip
    assert response.status_code == 403
    unsigned = await carrier.post(dialed, "unsigned", url, form=form)
    assert unsigned.status_code == 403


@pytest.mark.parametrize(
    ("number", "reason"),
    [("+14155550002", EndReason.BUSY), ("+14155550003", EndReason.NO_ANSWER)],
)
async def test_unanswered_calls_end_with_the_reason(
    running_gateway: RunningGateway, carrier: StandInCarrier, number: str, reason: EndReason
) -> None:
    events = await EventLog().start(running_gateway.nc)
    call_id = await originate(running_gateway, carrier.name, number)
    ended = await events.one("call.ended.v1", call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is reason
    assert events.of("call.started.v1", call_id) == []


async def test_a_refused_number_is_a_provider_error(
    running_gateway: RunningGateway, carrier: StandInCarrier
) -> None:
    events = await EventLog().start(running_gateway.nc)
    call_id = await originate(running_gateway, carrier.name, "+14155550006")
    ended = await events.one("call.ended.v1", call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.PROVIDER_ERROR
    assert carrier.calls == {}


async def test_machine_detection(running_gateway: RunningGateway, carrier: StandInCarrier) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    call_id = await originate(gw, carrier.name, "+14155550005", amd=True)
    amd = await events.one("amd.detected.v1", call_id)
    assert isinstance(amd, AmdDetected)
    assert amd.data.result == "machine"
    hang_up = HangUp(tenant_id="default", call_id=call_id, source="orch/o1")
    await gw.nc.publish(hang_up.subject, hang_up.to_bytes())
    await events.one("call.ended.v1", call_id)


async def test_the_dialer_hangs_up_a_live_call(
    running_gateway: RunningGateway, carrier: StandInCarrier
) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    call_id = await originate(gw, carrier.name, "+14155550199")
    await events.one("call.started.v1", call_id)
    (dialed,) = carrier.calls.values()

    provider = get(carrier.name)
    assert provider.dialer is not None
    assert provider.default_account is not None
    dialer = provider.dialer(provider.default_account(gw.settings, "default"))
    try:
        await dialer.hangup(dialed.sid)
        await dialer.hangup("no-such-call")  # an ended or unknown call is not an error
    finally:
        await dialer.aclose()

    ended = await events.one("call.ended.v1", call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.CALLER_HANGUP  # the provider closed the stream
    assert {"hangup": "true"} in dialed.updates
