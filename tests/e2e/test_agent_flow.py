"""An agent that does a business's work, end to end through the real stack.

Every service runs as its own process on a real NATS and PostgreSQL, with the real local
STT and TTS and the scripted LLM. The agents and the tenant's webhook tool are created
through the orchestrator's request/reply API; the call is placed with
``vb.cmd.call.originate`` through the real twilio SDK against the stand-in Twilio API, whose
callee talks over the Media Streams protocol: greeting → "a question about my account"
(transition with arguments) → PIN on the keypad (collect-digits node) → the webhook tool
against the business's server, which checks our signature → handoff to billing (greeting
with the variables collected) → "a person, please" → warm transfer to a human number.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from voicebus.contracts import subjects
from voicebus.contracts.agents import api
from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import (
    AgentHandoff,
    AgentReply,
    CallEnded,
    CallEvent,
    CallStarted,
    DtmfReceived,
    EndReason,
    FlowNodeEntered,
    FlowTransition,
    ToolCalled,
    ToolResult,
    parse_event,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.business import BusinessServer
from voicebus.devkit.caller.session import StreamCaller
from voicebus.devkit.carriers import DialedCall
from voicebus.devkit.carriers.twilio import TwilioCarrier
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.flows import (
    ACCOUNTS,
    HUMAN_NUMBER,
    PIN,
    billing_agent,
    lookup_account_tool,
    support_agent,
)
from voicebus.devkit.stack import DevStack
from voicebus.runtime.rpc import RpcClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TWILIO_SID = "AC" + "2" * 32
SECRET = "whsec-e2e-flow-0123456789"
SILENCE_MS = 1500


async def _callee(call: DialedCall, caller: StreamCaller) -> None:
    """The person who picks up: asks about an account, keys the PIN, asks for a person."""
    assert await caller.wait_for_agent_silence(quiet_ms=SILENCE_MS, timeout=120)  # greeting
    await caller.say_text("I have a question about my account.")
    assert await caller.wait_for_agent_silence(quiet_ms=SILENCE_MS, timeout=120)  # PIN prompt
    for key in f"{PIN}#":
        await caller.send_dtmf(key)
        await asyncio.sleep(0.2)
    assert await caller.wait_for_agent_silence(quiet_ms=SILENCE_MS, timeout=120)  # billing
    await caller.say_text("Can I talk to a person, please?")
    await caller.wait_closed(timeout=120)


@pytest.fixture(scope="module")
async def business() -> AsyncIterator[BusinessServer]:
    server = await BusinessServer(secret=SECRET, accounts=dict(ACCOUNTS)).start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def twilio() -> AsyncIterator[TwilioCarrier]:
    carrier = TwilioCarrier(account_sid=TWILIO_SID, auth_token=DEV_TWILIO_AUTH_TOKEN,
                            gateway_url="http://127.0.0.1:1", callee=_callee)  # fmt: skip
    yield carrier
    await carrier.stop()


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, twilio: TwilioCarrier
) -> AsyncIterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    log = (data_dir / "services.log").open("w")
    env = {
        "VB_RECORDER_DIR": str(data_dir / "recordings"),
        "VB_GATEWAY_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "VB_GATEWAY_TWILIO_API_BASE_URL": twilio.base_url,
        "VB_GATEWAY_TWILIO_CALLER_ID": "+14155550100",
    }
    dev = DevStack(data_dir, out=log, local_llm=False, env=env)
    try:
        await dev.start(ready_timeout=240.0)
        gateway = next(s.url for s in dev.services if s.name == "gateway")
        twilio.gateway_url = twilio.public_url = gateway
        await twilio.start()
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
            subjects.evt_filter(call_id=call_id), ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )  # fmt: skip
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


def _of(events: list[CallEvent], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def test_a_flow_with_keypad_webhook_handoff_and_transfer(
    stack: DevStack, business: BusinessServer, twilio: TwilioCarrier
) -> None:
    assert stack.nats_url is not None
    nc = await nats.connect(stack.nats_url)
    try:
        rpc = RpcClient(nc, timeout_s=10)
        tool = await rpc.ask(api.TOOLS_CREATE, api.CreateTool(
            tenant_id="default", tool=lookup_account_tool(business.url, SECRET)),
            api.ToolRecordReply)  # fmt: skip
        assert tool.record is not None
        assert SECRET not in tool.record.model_dump_json()
        for agent_id, definition in (("support", support_agent()), ("billing", billing_agent())):
            request = api.CreateAgent(tenant_id="default", agent_id=agent_id, definition=definition)
            await rpc.ask(api.AGENTS_CREATE, request, api.AgentRecordReply)
        command = OriginateCall(
            tenant_id="default", call_id=new_id(), source="test/e2e",
            data=OriginateCallData(agent_id="support", to_number="+14155550199",
                                   provider="twilio"),
        )  # fmt: skip
        await nc.jetstream().publish(command.subject, command.to_bytes(),
                                     headers={"Nats-Msg-Id": command.id})  # fmt: skip
    finally:
        await nc.drain()
    call_id = command.call_id
    async with asyncio.timeout(400):
        while True:
            events = await _events_of(stack.nats_url, call_id)
            if _of(events, CallEnded):
                break
            await asyncio.sleep(1.0)

    # The flow: nodes entered in order, the transitions with their arguments.
    entered = [(e.data.agent_id, e.data.node_id) for e in _of(events, FlowNodeEntered)]
    assert entered == [("support", "greet"), ("support", "verify"), ("support", "lookup"),
                       ("support", "billing")]  # fmt: skip
    moves = [(e.data.from_node_id, e.data.to_node_id, e.data.function, e.data.arguments)
             for e in _of(events, FlowTransition)]  # fmt: skip
    assert moves == [
        ("greet", "verify", "start_verification", {"reason": "account question"}),
        ("verify", "lookup", "collect_digits", {"pin": PIN}),
        ("lookup", "billing", "to_billing", {}),
    ]
    assert "".join(e.data.digits for e in _of(events, DtmfReceived)) == f"{PIN}#"
    # The webhook tool: called with the PIN, answered by the business, which checked our
    # signature on every request.
    called = [e for e in _of(events, ToolCalled) if e.data.name == "lookup_account"]
    assert [e.data.arguments for e in called] == [{"pin": PIN}]
    (result,) = [e for e in _of(events, ToolResult) if e.data.name == "lookup_account"]
    assert result.data.ok
    assert result.data.result["name"] == "Ada"
    assert business.seen
    assert all(seen.signed for seen in business.seen)
    assert business.seen[0].call_id == call_id
    # The handoff: billing took over with the variables collected.
    (handoff,) = _of(events, AgentHandoff)
    assert (handoff.data.from_agent_id, handoff.data.to_agent_id) == ("support", "billing")
    assert handoff.data.variables["pin"] == PIN
    assert handoff.data.variables["customer_name"] == "Ada"
    replies = _of(events, AgentReply)
    spoken = " ".join(r.data.text for r in replies)
    assert "Thank you Ada, you are verified." in spoken
    assert (
        "I am passing you to our billing team. Billing here, Ada. Your balance is 42 dollars."
        in spoken
    )
    assert replies[-1].data.agent_id == "billing"
    assert replies[-1].data.text == "Please hold while I transfer you."
    assert {r.data.agent_version for r in replies} == {1}
    # The transfer: the call ended as transferred, the stand-in dialed the human, warm.
    started = _of(events, CallStarted)[0]
    assert _of(events, CallEnded)[0].data.reason is EndReason.TRANSFERRED
    dialed = twilio.calls[started.data.provider_call_id]
    await asyncio.wait_for(dialed.ended.wait(), 60)
    assert dialed.error is None, dialed.error
    assert dialed.transferred_to == HUMAN_NUMBER
    assert dialed.whispered == ["A verified caller has a billing question."]
