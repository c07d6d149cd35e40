"""Plivo and Vobiz calls end to end: a simulated caller speaking each provider's protocol
(signed answer webhook, XML ``<Stream>``, Audio Streaming) talks to the scripted demo agent
through the real gateway, with every service running as its own process on a real NATS and
a real PostgreSQL and the real local STT and TTS.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from voicebus.contracts import subjects
from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import (
    CallEnded,
    CallEvent,
    CallStarted,
    Direction,
    EndReason,
    TranscriptFinal,
    parse_event,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.caller.plivo import PlivoCaller
from voicebus.devkit.caller.session import StreamCaller
from voicebus.devkit.caller.vobiz import VobizCaller
from voicebus.devkit.carriers.base import DialedCall
from voicebus.devkit.carriers.plivo import PlivoCarrier
from voicebus.devkit.carriers.vobiz import VobizCarrier
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.stack import DevStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

DEV_TOKEN = DEV_TWILIO_AUTH_TOKEN  # every provider's development placeholder is the same
LINES = ("Hi, where is my order 1234?", "Thanks, bye.")
CALLERS = {"plivo": PlivoCaller, "vobiz": VobizCaller}
CALLER_ID = "+14155550100"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@pytest.fixture(scope="module")
async def carriers() -> AsyncIterator[dict[str, PlivoCarrier]]:
    """Stand-in Plivo and Vobiz APIs; their gateway address is set once the stack runs."""
    stand_ins = {
        "plivo": PlivoCarrier(gateway_url="http://127.0.0.1:1", callee=_outbound_callee),
        "vobiz": VobizCarrier(gateway_url="http://127.0.0.1:1", callee=_outbound_callee),
    }
    yield stand_ins
    for stand_in in stand_ins.values():
        await stand_in.stop()


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, carriers: dict[str, PlivoCarrier]
) -> AsyncIterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    log = (data_dir / "services.log").open("w")
    env = {"VB_RECORDER_DIR": str(data_dir / "recordings")}
    for name, stand_in in carriers.items():
        env[f"VB_GATEWAY_{name.upper()}_API_URL"] = stand_in.base_url
        env[f"VB_GATEWAY_{name.upper()}_CALLER_ID"] = CALLER_ID
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


async def _outbound_callee(call: DialedCall, caller: StreamCaller) -> None:
    """The callee of an outbound call: hears the greeting, asks, says goodbye."""
    assert await caller.wait_for_agent_silence(quiet_ms=1200, timeout=90)
    await caller.say_text(LINES[0])
    assert await caller.wait_for_agent_silence(quiet_ms=1200, timeout=90)
    await caller.say_text(LINES[1])
    await caller.wait_closed(timeout=90)


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


async def _wait_for(nats_url: str, call_id: str, kind: type[Any]) -> list[CallEvent]:
    async with asyncio.timeout(60):
        while True:
            events = await _events_of(nats_url, call_id)
            if any(isinstance(e, kind) for e in events):
                return events
            await asyncio.sleep(0.5)


@pytest.mark.parametrize("provider", ["plivo", "vobiz"])
async def test_an_inbound_call(stack: DevStack, provider: str, tmp_path: Path) -> None:
    assert stack.nats_url is not None
    gateway = next(s.url for s in stack.services if s.name == "gateway")
    context = {"customer_name": "Ada"}
    caller = CALLERS[provider](gateway, DEV_TOKEN, "demo-scripted", context, timeout=20.0)
    async with caller as call:
        call_id = call.call_id
        assert call_id is not None
        assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=90)  # the greeting
        first = await call.say_text(LINES[0])
        assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=90)
        bye = await call.say_text(LINES[1])
        assert await call.wait_closed(timeout=90), "the agent did not hang up"
    result = await call.hang_up()

    # The caller heard the agent answer each line, and the agent ended the call.
    assert result.server_closed
    assert result.protocol_errors == []
    assert first.first_agent_audio_ms is not None
    assert bye.first_agent_audio_ms is not None
    assert result.heard_ms > 2000
    assert result.marks_received > 0

    events = await _wait_for(stack.nats_url, call_id, CallEnded)
    started = next(e for e in events if isinstance(e, CallStarted))
    assert started.data.provider == provider
    assert started.data.provider_call_id == call.call_sid
    assert started.data.stream_id == call.stream_sid
    assert started.data.audio.sample_rate == 8000
    assert started.data.context == context
    finals = [e.data.text for e in events if isinstance(e, TranscriptFinal)]
    assert [_words(t) for t in finals] == [_words(line) for line in LINES]
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert len(ended) == 1
    assert ended[0].data.reason is EndReason.AGENT_HANGUP


@pytest.mark.parametrize("provider", ["plivo", "vobiz"])
async def test_an_outbound_call(
    stack: DevStack, carriers: dict[str, PlivoCarrier], provider: str
) -> None:
    assert stack.nats_url is not None
    carrier = carriers[provider]
    call_id = new_id()
    command = OriginateCall(
        tenant_id="default",
        call_id=call_id,
        source="test/e2e",
        data=OriginateCallData(
            agent_id="demo-scripted",
            to_number="+14155550199",
            provider=provider,
            context={"customer_name": "Ada"},
        ),
    )
    nc = await nats.connect(stack.nats_url)
    try:
        await nc.jetstream().publish(
            command.subject, command.to_bytes(), headers={"Nats-Msg-Id": command.id}
        )
    finally:
        await nc.drain()
    dialed = await carrier.wait_ended(timeout=300)
    assert dialed.error is None, dialed.error
    assert dialed.progress() == ["ringing", "answer", "completed"]
    result = dialed.result
    assert result is not None
    assert result.server_closed  # the agent hung up after its goodbye
    assert result.protocol_errors == []
    assert result.heard_ms > 2000
    assert result.marks_received > 0

    events = await _wait_for(stack.nats_url, call_id, CallEnded)
    started = next(e for e in events if isinstance(e, CallStarted))
    assert started.data.provider == provider
    assert started.data.direction is Direction.OUTBOUND
    assert started.data.provider_call_id == dialed.sid
    assert started.data.audio.sample_rate == 8000
    assert started.data.context == {"customer_name": "Ada"}
    assert any(e.type == "call.ringing.v1" for e in events)
    finals = [e.data.text for e in events if isinstance(e, TranscriptFinal)]
    assert [_words(t) for t in finals] == [_words(line) for line in LINES]
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert len(ended) == 1
    assert ended[0].data.reason is EndReason.AGENT_HANGUP
