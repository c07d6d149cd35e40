"""Outbound Twilio calls on a real nats-server: originate → the real twilio SDK → the devkit's
stand-in Twilio API → signed callbacks → the gateway's answer/status routes → media stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from gateway_kit import (
    AUTH_TOKEN,
    WEBHOOK_FORM,
    EventLog,
    FakeOrchestrator,
    NoAccounts,
    RunningGateway,
    serve_gateway,
    sign,
    twiml_stream,
)
from nats.js.client import JetStreamContext

from voicebus.contracts.commands import (
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
    AmdResult,
    CallEnded,
    CallError,
    CallInitiated,
    CallRinging,
    CallStarted,
    Direction,
    EndReason,
    ErrorCode,
)
from voicebus.contracts.streams import COMMANDS
from voicebus.devkit.caller.errors import CallRejectedError
from voicebus.devkit.caller.session import StreamCaller
from voicebus.devkit.carriers import DialedCall
from voicebus.devkit.carriers.twilio import TwilioCarrier

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ACCOUNT_SID = "AC" + "0" * 32


async def _short_call(call: DialedCall, caller: StreamCaller) -> None:
    await caller.wait_for_agent_audio(timeout=0.6)  # nobody speaks: just stay on the line briefly


@dataclass
class Rig:
    gw: RunningGateway
    carrier: TwilioCarrier
    events: EventLog

    async def originate(self, to: str, **data: Any) -> str:
        command = OriginateCall(
            tenant_id="default",
            call_id=f"out-{to[-4:]}-{len(self.carrier.calls)}",
            source="test/1",
            data=OriginateCallData(
                agent_id="demo", to_number=to, provider="twilio", from_number="+14155550100",
                **data,
            ),
        )  # fmt: skip
        js = self.gw.nc.jetstream()
        await js.publish(command.subject, command.to_bytes(), headers={"Nats-Msg-Id": command.id})
        return command.call_id

    async def ended(self, call_id: str) -> CallEnded:
        event = await self.events.one("call.ended.v1", call_id)
        assert isinstance(event, CallEnded)
        return event


@pytest_asyncio.fixture
async def rig(
    embedded_nats_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Rig]:
    async with serve_gateway(embedded_nats_factory().url) as gw:
        carrier = TwilioCarrier(
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, gateway_url=gw.base_url,
            callee=_short_call,
        )  # fmt: skip
        monkeypatch.setenv("VB_GATEWAY_TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        monkeypatch.setenv("VB_GATEWAY_TWILIO_API_BASE_URL", carrier.base_url)
        await FakeOrchestrator(["demo"]).start(gw.nc)
        await NoAccounts().start(gw.nc)
        events = await EventLog().start(gw.nc)
        async with carrier:
            yield Rig(gw, carrier, events)


async def test_answered_call_starts_with_the_originate_context(rig: Rig) -> None:
    call_id = await rig.originate("+14155550199", context={"customer_name": "Ada"})
    ended = await rig.ended(call_id)
    initiated = await rig.events.one("call.initiated.v1", call_id)
    ringing = await rig.events.one("call.ringing.v1", call_id)
    started = await rig.events.one("call.started.v1", call_id)
    assert isinstance(initiated, CallInitiated)
    assert isinstance(ringing, CallRinging)
    assert isinstance(started, CallStarted)
    assert initiated.data.direction is Direction.OUTBOUND
    assert initiated.data.context == {"customer_name": "Ada"}
    assert started.data.direction is Direction.OUTBOUND
    assert started.data.context == {"customer_name": "Ada"}
    assert (started.data.agent_id, started.tenant_id) == ("demo", "default")
    assert started.data.to_number == "+14155550199"
    dialed = await rig.carrier.wait_ended()
    assert dialed.error is None
    assert started.data.provider_call_id == ringing.data.provider_call_id == dialed.sid
    assert ended.data.reason is EndReason.CALLER_HANGUP
    assert dialed.progress() == ["initiated", "ringing", "in-progress", "answer", "completed"]
    assert all(status == 200 for _, status in dialed.posted)
    order = [e.type for e in rig.events.events if e.call_id == call_id]
    assert order.index("call.initiated.v1") < order.index("call.ringing.v1")
    assert order.index("call.ringing.v1") < order.index("call.started.v1")


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        ("+14155550002", EndReason.BUSY),
        ("+14155550003", EndReason.NO_ANSWER),
        ("+14155550004", EndReason.FAILED),
    ],
)
async def test_unanswered_calls_end_with_the_reason(rig: Rig, to: str, reason: EndReason) -> None:
    call_id = await rig.originate(to)
    ended = await rig.ended(call_id)
    assert ended.data.reason is reason
    assert rig.events.of("call.started.v1", call_id) == []
    assert len(rig.events.of("call.ended.v1", call_id)) == 1


async def test_a_refused_dial_ends_with_the_providers_error_code(rig: Rig) -> None:
    call_id = await rig.originate("+14155550006")
    ended = await rig.ended(call_id)
    assert ended.data.reason is EndReason.PROVIDER_ERROR
    assert ended.data.provider_error_code == "21211"
    error = await rig.events.one("call.error.v1", call_id)
    assert isinstance(error, CallError)
    assert error.data.code is ErrorCode.PROVIDER_ERROR
    assert "+14155550006" not in error.data.message  # no personal data in messages
    assert rig.carrier.calls == {}


async def test_machine_detection_reports_amd_detected(rig: Rig) -> None:
    call_id = await rig.originate("+14155550005", detect_machine=True)
    amd = await rig.events.one("amd.detected.v1", call_id)
    assert isinstance(amd, AmdDetected)
    assert amd.data.result is AmdResult.MACHINE_END_BEEP
    assert amd.data.detector == "provider"
    await rig.ended(call_id)
    dialed = await rig.carrier.wait_ended()
    assert dialed.params["MachineDetection"] == "DetectMessageEnd"
    assert "amd:machine_end_beep" in dialed.progress()


async def test_a_forged_status_callback_is_refused(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.gw.base_url) as client:
        response = await client.post(
            "/telephony/twilio/status/c1?call_id=c1&tenant_id=default&agent_id=demo",
            data={"CallStatus": "busy"},
        )
    assert response.status_code == 403
    error = await rig.events.one("call.error.v1")
    assert error.data.security


async def _stay_on_line(call: DialedCall, caller: StreamCaller) -> None:
    await caller.wait_closed(timeout=30)


async def test_transfer_and_dtmf_on_a_live_call(rig: Rig) -> None:
    rig.carrier.callee = _stay_on_line
    call_id = await rig.originate("+14155550199")
    await rig.events.one("call.started.v1", call_id)
    dtmf = SendDtmf(tenant_id="default", call_id=call_id, source="test/1",
                    data=SendDtmfData(digits="12#"))  # fmt: skip
    await rig.gw.nc.publish(dtmf.subject, dtmf.to_bytes())
    dialed = next(iter(rig.carrier.calls.values()))
    caller = dialed.caller
    assert caller is not None
    assert await caller.wait_for_agent_audio(ms=300, timeout=15)  # in-band tones reach the callee
    transfer = Transfer(tenant_id="default", call_id=call_id, source="test/1",
                        data=TransferData(to_number="+14155550123"))  # fmt: skip
    await rig.gw.nc.publish(transfer.subject, transfer.to_bytes())
    ended = await rig.ended(call_id)
    assert ended.data.reason is EndReason.TRANSFERRED
    await rig.carrier.wait_ended()
    twiml = dialed.updates[-1]["Twiml"]
    assert "<Dial" in twiml
    assert "+14155550123</Number>" in twiml
    assert rig.events.of("call.error.v1", call_id) == []


async def test_a_warm_transfer_whispers_the_announcement(rig: Rig) -> None:
    rig.carrier.callee = _stay_on_line
    call_id = await rig.originate("+14155550199")
    await rig.events.one("call.started.v1", call_id)
    transfer = Transfer(tenant_id="default", call_id=call_id, source="test/1",
                        data=TransferData(to_number="+14155550123", mode=TransferMode.WARM,
                                          announcement="Ada asks about her order"))  # fmt: skip
    await rig.gw.nc.publish(transfer.subject, transfer.to_bytes())
    ended = await rig.ended(call_id)
    assert ended.data.reason is EndReason.TRANSFERRED
    dialed = await rig.carrier.wait_ended()
    assert dialed.error is None
    # The call's new TwiML comes from the gateway's signed transfer URL; the target's leg
    # fetches the whisper (<Number url>) and hears the announcement before the bridge.
    assert f"/telephony/twilio/transfer/{call_id}?" in dialed.updates[-1]["Url"]
    assert dialed.transferred_to == "+14155550123"
    assert dialed.whispered == ["Ada asks about her order"]
    assert ("transfer", 200) in dialed.posted
    assert ("whisper", 200) in dialed.posted
    assert rig.events.of("call.error.v1", call_id) == []


async def test_an_unknown_agent_is_never_dialed(rig: Rig) -> None:
    command = OriginateCall(
        tenant_id="default", call_id="out-noagent", source="test/1",
        data=OriginateCallData(agent_id="nobody", to_number="+14155550199", provider="twilio"),
    )  # fmt: skip
    await rig.gw.nc.jetstream().publish(command.subject, command.to_bytes())
    ended = await rig.ended("out-noagent")
    assert ended.data.reason is EndReason.FAILED
    error = await rig.events.one("call.error.v1", "out-noagent")
    assert isinstance(error, CallError)
    assert error.data.code is ErrorCode.UNKNOWN_AGENT
    assert rig.carrier.calls == {}
    assert rig.events.of("call.initiated.v1", "out-noagent") == []


async def wait_for_acked(js: JetStreamContext, durable: str, count: int) -> None:
    """Until the work-queue consumer ``durable`` has acknowledged ``count`` commands."""
    for _ in range(400):
        info = await js.consumer_info(COMMANDS.name, durable)
        if info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{durable} did not acknowledge {count} commands")


async def test_a_redelivered_originate_never_dials_twice(rig: Rig) -> None:
    command = OriginateCall(
        tenant_id="default", call_id="out-twice", source="test/1",
        data=OriginateCallData(
            agent_id="demo", to_number="+14155550002", provider="twilio",
            from_number="+14155550100",
        ),
    )  # fmt: skip
    js = rig.gw.nc.jetstream()
    await js.publish(command.subject, command.to_bytes(), headers={"Nats-Msg-Id": "first"})
    await rig.ended("out-twice")
    # The same command again, as after a redelivery (a new message id, so the stream keeps it).
    await js.publish(command.subject, command.to_bytes(), headers={"Nats-Msg-Id": "second"})
    await wait_for_acked(js, "gateway-originate", 2)
    assert len(rig.events.of("call.initiated.v1", "out-twice")) == 1
    assert len(rig.carrier.calls) == 1


class _NoMediaCarrier(TwilioCarrier):
    """Answers, but the media never connects (as when the answer URL cannot be fetched)."""

    async def media_target(self, call: DialedCall) -> tuple[str, dict[str, str]]:
        raise CallRejectedError("answer URL unreachable", status=502, body="")


async def test_an_answered_call_whose_media_never_starts_still_ends(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    carrier = _NoMediaCarrier(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                              gateway_url=rig.gw.base_url)  # fmt: skip
    monkeypatch.setenv("VB_GATEWAY_TWILIO_API_BASE_URL", carrier.base_url)
    async with carrier:
        rig.carrier = carrier
        call_id = await rig.originate("+14155550199")
        ended = await rig.ended(call_id)
    assert ended.data.reason is EndReason.FAILED
    assert ended.data.detail is not None
    assert "never started" in ended.data.detail
    assert rig.events.of("call.started.v1", call_id) == []


async def test_a_tenants_inbound_webhook_is_checked_with_its_account(rig: Rig) -> None:
    form = dict(WEBHOOK_FORM)
    async with httpx.AsyncClient(base_url=rig.gw.base_url) as client:
        path = "/telephony/twilio/default/inbound/demo"
        url = f"{rig.gw.settings.public_url}{path}"
        ok = await client.post(path, data=form, headers={"X-Twilio-Signature": sign(url, form)})
        other = "/telephony/twilio/acme/inbound/demo"
        signature = sign(f"{rig.gw.settings.public_url}{other}", form)
        refused = await client.post(other, data=form, headers={"X-Twilio-Signature": signature})
    assert ok.status_code == 200
    _, params = twiml_stream(ok.text)
    assert params["tenant_id"] == "default"
    assert refused.status_code == 403  # no Twilio account for tenant acme
