"""Twilio and Exotel end to end: outbound calls placed with ``vb.cmd.call.originate`` through
the real twilio SDK / Exotel's calls/connect against the devkit's stand-in carriers, and an
inbound Exotel call through the Voicebot applet's URL, talking to the scripted demo agent with
every service running as its own process on a real NATS and PostgreSQL and the real local STT
and TTS. Unanswered, refused and machine-answered calls end with the right events.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from voicebus.contracts import subjects
from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import (
    AgentReply,
    AmdDetected,
    AmdResult,
    CallEnded,
    CallEvent,
    CallInitiated,
    CallStarted,
    Direction,
    EndReason,
    parse_event,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.caller.exotel import ExotelCaller
from voicebus.devkit.caller.session import StreamCaller
from voicebus.devkit.carriers import Behaviour, DialedCall, StandInCarrier
from voicebus.devkit.carriers.exotel import ExotelCarrier
from voicebus.devkit.carriers.twilio import TwilioCarrier
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.stack import DevStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TWILIO_SID = "AC" + "1" * 32
EXOTEL = {"ACCOUNT_SID": "acme1", "API_KEY": "key1", "API_TOKEN": "token-0123456789"}
EXOTEL_WEBHOOK = ("voicebus", "exotel-webhook-0123456789")
CALLER_ID = "+14155550100"
BYE = "Thanks, bye."


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


async def _callee(call: DialedCall, caller: StreamCaller) -> None:
    """Hears the greeting, says goodbye, waits for the agent's hang-up; a machine hangs up."""
    if call.behaviour is Behaviour.MACHINE:
        await caller.wait_for_agent_audio(ms=200, timeout=60)
        return
    assert await caller.wait_for_agent_silence(quiet_ms=1200, timeout=90)
    await caller.say_text(BYE)
    await caller.wait_closed(timeout=90)


@pytest.fixture(scope="module")
async def carriers() -> AsyncIterator[dict[str, StandInCarrier]]:
    """Stand-in Twilio and Exotel APIs; their gateway address is set once the stack runs."""
    stand_ins: dict[str, StandInCarrier] = {
        "twilio": TwilioCarrier(account_sid=TWILIO_SID, auth_token=DEV_TWILIO_AUTH_TOKEN,
                                gateway_url="http://127.0.0.1:1", callee=_callee),
        "exotel": ExotelCarrier(account_sid=EXOTEL["ACCOUNT_SID"], api_key=EXOTEL["API_KEY"],
                                api_token=EXOTEL["API_TOKEN"], gateway_url="http://127.0.0.1:1",
                                callee=_callee),
    }  # fmt: skip
    yield stand_ins
    for stand_in in stand_ins.values():
        await stand_in.stop()


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, carriers: dict[str, StandInCarrier]
) -> AsyncIterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    log = (data_dir / "services.log").open("w")
    env = {
        "VB_RECORDER_DIR": str(data_dir / "recordings"),
        "VB_GATEWAY_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "VB_GATEWAY_TWILIO_API_BASE_URL": carriers["twilio"].base_url,
        "VB_GATEWAY_TWILIO_CALLER_ID": CALLER_ID,
        "VB_GATEWAY_EXOTEL_API_BASE_URL": carriers["exotel"].base_url,
        "VB_GATEWAY_EXOTEL_CALLER_ID": "+918047491899",
        "VB_GATEWAY_EXOTEL_WEBHOOK_USER": EXOTEL_WEBHOOK[0],
        "VB_GATEWAY_EXOTEL_WEBHOOK_PASSWORD": EXOTEL_WEBHOOK[1],
    } | {f"VB_GATEWAY_EXOTEL_{name}": value for name, value in EXOTEL.items()}
    dev = DevStack(data_dir, out=log, local_llm=False, env=env)
    try:
        await dev.start(ready_timeout=240.0)
        gateway = next(s.url for s in dev.services if s.name == "gateway")
        for stand_in in carriers.values():
            stand_in.gateway_url = stand_in.public_url = gateway
            await stand_in.start()
        yield dev
        # Nothing any service did was outside what its NATS user is allowed.
        assert dev.permission_violations() == []
    finally:
        await dev.stop()
        log.close()


async def _events_of(nats_url: str, call_id: str) -> list[CallEvent]:
    nc = await nats.connect(nats_url)
    events: list[CallEvent] = []
    try:
        sub = await nc.jetstream().subscribe(
            subjects.evt_filter(call_id=call_id),
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except nats.errors.TimeoutError:
                break
            events.append(parse_event(msg.data))
        await sub.unsubscribe()
    finally:
        await nc.drain()
    return events


async def _until(nats_url: str, call_id: str, kind: type[Any], timeout: float = 120) -> list[Any]:
    async with asyncio.timeout(timeout):
        while True:
            events = await _events_of(nats_url, call_id)
            if any(isinstance(e, kind) for e in events):
                return events
            await asyncio.sleep(0.5)


async def _originate(stack: DevStack, provider: str, to: str, **data: Any) -> str:
    assert stack.nats_url is not None
    command = OriginateCall(
        tenant_id="default", call_id=new_id(), source="test/e2e",
        data=OriginateCallData(agent_id="demo-scripted", to_number=to, provider=provider, **data),
    )  # fmt: skip
    nc = await nats.connect(stack.nats_url)
    try:
        await nc.jetstream().publish(
            command.subject, command.to_bytes(), headers={"Nats-Msg-Id": command.id}
        )
    finally:
        await nc.drain()
    return command.call_id


def _one(events: list[Any], kind: type[Any]) -> Any:
    found = [e for e in events if isinstance(e, kind)]
    assert len(found) == 1, [e.type for e in events]
    return found[0]


@pytest.mark.parametrize("provider", ["twilio", "exotel"])
async def test_an_outbound_call_greets_the_callee_by_name(
    stack: DevStack, carriers: dict[str, StandInCarrier], provider: str
) -> None:
    assert stack.nats_url is not None
    call_id = await _originate(stack, provider, "+14155550199", context={"customer_name": "Ada"})
    events = await _until(stack.nats_url, call_id, CallEnded, timeout=300)
    initiated = _one(events, CallInitiated)
    started = _one(events, CallStarted)
    assert initiated.data.direction is started.data.direction is Direction.OUTBOUND
    assert initiated.data.context == started.data.context == {"customer_name": "Ada"}
    assert started.data.provider == provider
    assert any(e.type == "call.ringing.v1" for e in events)
    greeting = next(e for e in events if isinstance(e, AgentReply))
    assert "Ada" in greeting.data.text
    assert _one(events, CallEnded).data.reason is EndReason.AGENT_HANGUP
    dialed = carriers[provider].calls[started.data.provider_call_id]
    await dialed.ended.wait()
    assert dialed.error is None, dialed.error
    assert dialed.result is not None
    assert dialed.result.server_closed
    assert dialed.result.protocol_errors == []


async def test_an_inbound_exotel_call(stack: DevStack) -> None:
    assert stack.nats_url is not None
    gateway = next(s.url for s in stack.services if s.name == "gateway")
    context = {"customer_name": "Ravi"}
    async with ExotelCaller(
        gateway, EXOTEL_WEBHOOK, "demo-scripted", context, timeout=20.0
    ) as call:
        call_id = call.call_id
        assert call_id is not None
        assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=90)  # the greeting
        await call.say_text(BYE)
        assert await call.wait_closed(timeout=90), "the agent did not hang up"
    result = await call.hang_up()
    assert result.server_closed
    assert result.protocol_errors == []
    assert result.marks_received > 0
    events = await _until(stack.nats_url, call_id, CallEnded)
    started = _one(events, CallStarted)
    assert (started.data.provider, started.data.direction) == ("exotel", Direction.INBOUND)
    assert started.data.context == context
    assert "Ravi" in next(e for e in events if isinstance(e, AgentReply)).data.text
    assert _one(events, CallEnded).data.reason is EndReason.AGENT_HANGUP


@pytest.mark.parametrize(
    ("provider", "to", "reason", "code"),
    [
        ("twilio", "+14155550002", EndReason.BUSY, None),
        ("exotel", "+14155550003", EndReason.NO_ANSWER, None),
        ("twilio", "+14155550006", EndReason.PROVIDER_ERROR, "21211"),
        ("exotel", "+14155550006", EndReason.PROVIDER_ERROR, "34002"),
    ],
)
async def test_calls_that_never_connect(
    stack: DevStack, provider: str, to: str, reason: EndReason, code: str | None
) -> None:
    assert stack.nats_url is not None
    call_id = await _originate(stack, provider, to)
    events = await _until(stack.nats_url, call_id, CallEnded)
    ended = _one(events, CallEnded)
    assert (ended.data.reason, ended.data.provider_error_code) == (reason, code)
    assert not any(isinstance(e, CallStarted) for e in events)


async def test_a_machine_answer_is_reported(stack: DevStack) -> None:
    assert stack.nats_url is not None
    call_id = await _originate(stack, "twilio", "+14155550005", detect_machine=True)
    events = await _until(stack.nats_url, call_id, AmdDetected)
    amd = _one(events, AmdDetected)
    assert (amd.data.result, amd.data.detector) == (AmdResult.MACHINE_END_BEEP, "provider")
    await _until(stack.nats_url, call_id, CallEnded)
