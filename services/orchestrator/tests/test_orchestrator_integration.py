"""The real orchestrator service on a real nats-server, with the shipped agent files.

It answers AGENTS_GET, claims a call, greets, answers transcripts with streamed
``Say`` chunks, tool events and ``agent.reply``, trims history on interruption,
hangs up after the goodbye, and a second instance continues a call from
``vb_sessions``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from prometheus_client import REGISTRY

from voicebus.contracts import subjects
from voicebus.contracts.campaigns import MODE_CONTEXT_KEY, CampaignMode
from voicebus.contracts.commands import AnyControlCommand, HangUp, MaskKeypad, Say, parse_control
from voicebus.contracts.events import (
    AgentReply,
    AgentSpeechInterrupted,
    AgentSpeechInterruptedData,
    AgentSpeechStopped,
    AgentSpeechStoppedData,
    CallEnded,
    CallEndedData,
    CallError,
    CallEvent,
    CallStarted,
    CallStartedData,
    Direction,
    DtmfReceived,
    DtmfReceivedData,
    EndReason,
    Envelope,
    FlowTransition,
    ToolCalled,
    ToolResult,
    TranscriptFinal,
    TranscriptFinalData,
    parse_event,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import AGENTS_GET
from voicebus.contracts.rpc import AgentReply as RpcAgentReply
from voicebus.orchestrator.app import build
from voicebus.orchestrator.calls import Orchestrator
from voicebus.orchestrator.session import Session
from voicebus.orchestrator.settings import OrchestratorSettings
from voicebus.runtime.service import Service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO_AGENTS = Path(__file__).resolve().parents[3] / "agents"
WAIT_S = 20.0
SOURCE = "test/1"


@dataclass
class Instance:
    service: Service
    orchestrator: Orchestrator


@dataclass
class CallTap:
    """Everything the bus carried for one call: control commands and events."""

    call_id: str
    commands: list[AnyControlCommand] = field(default_factory=list)
    events: list[CallEvent] = field(default_factory=list)

    def says(self, utterance_id: str | None = None) -> list[Say]:
        return [
            c for c in self.commands
            if isinstance(c, Say) and utterance_id in (None, c.data.utterance_id)
        ]  # fmt: skip

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in (*self.commands, *self.events) if isinstance(e, kind)]


async def _start(url: str, instance_id: str, **overrides: Any) -> Instance:
    settings = OrchestratorSettings(
        nats_url=url, instance_id=instance_id, **{"agents_dir": REPO_AGENTS, **overrides}
    )
    service, app = build(settings, environ={})
    await service.start()
    return Instance(service, app.state.orchestrator)


@pytest.fixture
async def nats_server(embedded_nats_factory: Callable[..., Any]) -> str:
    return str(embedded_nats_factory().url)


@pytest.fixture
async def client(nats_server: str) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server)
    yield nc
    await nc.drain()


async def _tap(nc: Client, call_id: str) -> CallTap:
    tap = CallTap(call_id)

    async def on_command(msg: Msg) -> None:
        if msg.reply:  # acknowledge like media does: Say waits for a receipt
            await msg.respond(b"")
        tap.commands.append(parse_control(msg.data))

    async def on_event(msg: Msg) -> None:  # a plain subscriber: it never answers msg.reply
        tap.events.append(parse_event(msg.data))

    await nc.subscribe(subjects.ctl_all(call_id), cb=on_command)
    await nc.subscribe(subjects.evt_filter("acme", call_id), cb=on_event)
    await nc.flush()
    return tap


async def _publish(nc: Client, event: Envelope) -> None:
    await nc.jetstream().publish(event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id})


def _call_started(call_id: str, agent_id: str = "demo-scripted") -> CallStarted:
    return CallStarted(
        tenant_id="acme", call_id=call_id, source=SOURCE,
        data=CallStartedData(direction=Direction.INBOUND, provider="twilio", agent_id=agent_id,
                             gateway_instance="gw-1", context={"customer_name": "Ada"}),
    )  # fmt: skip


def _transcript(call_id: str, text: str) -> TranscriptFinal:
    return TranscriptFinal(
        tenant_id="acme", call_id=call_id, source=SOURCE,
        data=TranscriptFinalData(utterance_id=f"u-{new_id()}", text=text, start_ms=0, end_ms=900),
    )  # fmt: skip


async def _until(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def _bad_events() -> float:
    value = REGISTRY.get_sample_value("voicebus_orchestrator_bad_input_total", {"kind": "event"})
    return value or 0.0


async def _session(kv: KeyValue, call_id: str) -> Session | None:
    try:
        entry = await kv.get(call_id)
    except KeyNotFoundError:
        return None
    return Session.model_validate_json(entry.value) if entry.value else None


async def _session_until(
    kv: KeyValue, call_id: str, check: Callable[[Session | None], bool], what: str
) -> Session | None:
    async with asyncio.timeout(WAIT_S):
        while True:
            session = await _session(kv, call_id)
            if check(session):
                return session
            await asyncio.sleep(0.05)
    raise AssertionError(what)  # pragma: no cover - the timeout raises first


async def _ask(client: Client, payload: bytes) -> Msg:
    """A request to ``AGENTS_GET``, retried while the server reports no responder yet.

    Seen twice in full-suite runs under load: "no responders" right after the
    service reported started (its subscription flushed). Cause not found yet;
    a caller retrying within its time budget is what a client should do anyway.
    """
    async with asyncio.timeout(10):
        while True:
            try:
                return await client.request(AGENTS_GET, payload, timeout=5)
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.1)


async def test_agents_get_answers_found_not_found_and_bad_request(
    nats_server: str, client: Client
) -> None:
    instance = await _start(nats_server, "o-rpc")
    try:
        found = await _ask(client, b'{"tenant_id": "acme", "agent_id": "demo"}')
        reply = RpcAgentReply.model_validate_json(found.data)
        assert reply.ok
        assert reply.agent is not None
        assert (reply.agent.agent_id, reply.agent.tts.engine) == ("demo", "hibari")

        missing = await _ask(client, b'{"tenant_id": "acme", "agent_id": "nobody"}')
        reply = RpcAgentReply.model_validate_json(missing.data)
        assert not reply.ok
        assert reply.error is not None
        assert (reply.error.status, reply.error.code) == (404, "agent_not_found")

        bad = await _ask(client, b"garbage")
        reply = RpcAgentReply.model_validate_json(bad.data)
        assert reply.error is not None
        assert reply.error.status == 400
    finally:
        await instance.service.stop()


async def test_a_whole_call_greeting_tool_turn_interruption_goodbye_and_end(
    nats_server: str, client: Client
) -> None:
    instance = await _start(nats_server, "o-call")
    kv = await client.jetstream().key_value("vb_sessions")
    call_id = new_id()
    tap = await _tap(client, call_id)
    try:
        await _publish(client, _call_started(call_id))
        await _until(lambda: any(s.data.final for s in tap.says()), "the greeting")
        assert [s.data.text for s in tap.says()] == [
            "Hi Ada, this is Acme support.",
            "How can I help?",
        ]
        await _until(lambda: len(tap.of(AgentReply)) == 1, "the greeting's agent.reply")

        # Garbage on the call's event subjects is counted and ignored; the call goes on.
        bad_before = _bad_events()
        await client.jetstream().publish(f"vb.evt.acme.{call_id}.transcript.final", b"{oops")
        await _publish(client, _transcript(call_id, "Hi, where is my order 1234?"))
        await _until(lambda: len(tap.of(AgentReply)) == 2, "the answer's agent.reply")
        answer = tap.of(AgentReply)[1]
        chunks = tap.says(answer.data.utterance_id)
        assert [c.data.text for c in chunks] == [
            "Let me check order 1234.",
            "Order 1234 shipped on Monday with UPS and should arrive on Thursday.",
            "Is there anything else?",
            "",
        ]
        assert [c.data.seq for c in chunks] == [0, 1, 2, 3]
        assert chunks[-1].data.final
        assert answer.data.complete
        assert answer.data.engine == "scripted"
        assert answer.data.llm_first_token_ms is not None
        assert _bad_events() == bad_before + 1
        (called,) = tap.of(ToolCalled)
        (result,) = tap.of(ToolResult)
        assert called.data.name == result.data.name == "check_order_status"
        assert result.data.ok
        assert result.data.result["status"] == "shipped"

        heard = "Let me check order 1234. Order 1234 shipped"
        await _publish(
            client,
            AgentSpeechInterrupted(
                tenant_id="acme", call_id=call_id, source=SOURCE,
                data=AgentSpeechInterruptedData(utterance_id=answer.data.utterance_id,
                                                text_planned=answer.data.text,
                                                text_heard=heard, played_ms=2500),
            ),
        )  # fmt: skip

        def trimmed(session: Session | None) -> bool:
            return session is not None and any(
                m.content == "Order 1234 shipped" for m in session.history
            )

        session = await _session_until(kv, call_id, trimmed, "history trimmed to text_heard")
        assert session is not None
        spoken = [m.content for m in session.history if m.role == "assistant"]
        assert spoken == ["Hi Ada, this is Acme support. How can I help?",
                          "Let me check order 1234.", "Order 1234 shipped"]  # fmt: skip

        await _publish(client, _transcript(call_id, "Thanks, bye."))
        await _until(lambda: len(tap.of(AgentReply)) == 3, "the goodbye's agent.reply")
        goodbye = tap.of(AgentReply)[2]
        assert [c.data.text for c in tap.says(goodbye.data.utterance_id)] == [
            "Thanks for calling Acme.",
            "Goodbye!",
            "",
        ]
        assert tap.of(ToolCalled)[-1].data.name == "end_call"
        await asyncio.sleep(0.5)
        assert not tap.of(HangUp)  # not before the goodbye played
        await _publish(
            client,
            AgentSpeechStopped(
                tenant_id="acme", call_id=call_id, source=SOURCE,
                data=AgentSpeechStoppedData(utterance_id=goodbye.data.utterance_id,
                                            text=goodbye.data.text, played_ms=1800),
            ),
        )  # fmt: skip
        await _until(lambda: bool(tap.of(HangUp)), "the hang-up")
        assert tap.of(HangUp)[0].data.after_playback

        await _publish(
            client,
            CallEnded(
                tenant_id="acme",
                call_id=call_id,
                source=SOURCE,
                data=CallEndedData(reason=EndReason.AGENT_HANGUP),
            ),
        )
        await _session_until(kv, call_id, lambda s: s is None, "the session deleted")
        await _until(lambda: not instance.orchestrator.conversations, "the call released")
    finally:
        await instance.service.stop()


async def test_a_second_instance_takes_the_call_over_from_vb_sessions(
    nats_server: str, client: Client
) -> None:
    first = await _start(nats_server, "o-a")
    second = await _start(nats_server, "o-b")
    call_id = new_id()
    tap = await _tap(client, call_id)
    stopped: list[Instance] = []
    try:
        await _publish(client, _call_started(call_id))
        await _until(lambda: len(tap.of(AgentReply)) == 1, "the greeting")
        owner, other = (first, second) if call_id in first.orchestrator.conversations else (
            second, first)  # fmt: skip
        assert call_id in owner.orchestrator.conversations
        assert call_id not in other.orchestrator.conversations

        await _publish(client, _transcript(call_id, "Where is my order 1234?"))
        await _until(lambda: len(tap.of(AgentReply)) == 2, "the first answer")

        assert not await other.orchestrator.take_over(call_id)  # the owner's lease holds
        assert not await other.orchestrator.take_over(new_id())  # no session to continue
        await owner.service.stop()  # the owner goes away; its session stays in vb_sessions
        stopped.append(owner)
        # Said while nobody owns the call: the new owner must still answer it.
        await _publish(client, _transcript(call_id, "And order 5678?"))
        await asyncio.sleep(0.3)
        assert len(tap.of(AgentReply)) == 2

        assert await other.orchestrator.take_over(call_id)
        await _until(lambda: len(tap.of(AgentReply)) == 3, "the answer after takeover")
        assert "5678 is being packed" in tap.of(AgentReply)[2].data.text

        await _publish(client, _transcript(call_id, "hello"))
        await _until(lambda: len(tap.of(AgentReply)) == 4, "a later answer")
        greetings = [s for s in tap.says() if s.data.text.startswith("Hi Ada")]
        assert len(greetings) == 1  # no second greeting

        session = other.orchestrator.conversations[call_id].session
        users = [m.content for m in session.history if m.role == "user"]
        assert users == ["Where is my order 1234?", "And order 5678?", "hello"]
        assert session.history[1].content.startswith("Hi Ada")  # the first owner's greeting
        assert session.turns == 3
    finally:
        for instance in (first, second):
            if instance not in stopped:
                await instance.service.stop()


async def test_a_call_for_an_unknown_agent_is_reported_and_hung_up(
    nats_server: str, client: Client
) -> None:
    instance = await _start(nats_server, "o-unknown")
    call_id = new_id()
    tap = await _tap(client, call_id)
    try:
        await _publish(client, _call_started(call_id, agent_id="nobody"))
        await _until(lambda: bool(tap.of(HangUp)), "the hang-up")
        (error,) = tap.of(CallError)
        assert error.data.code == "unknown_agent"
        assert not tap.of(HangUp)[0].data.after_playback
        assert not tap.says()
        assert call_id not in instance.orchestrator.conversations
    finally:
        await instance.service.stop()


async def test_a_notification_campaign_call_gets_no_conversation(
    nats_server: str, client: Client
) -> None:
    instance = await _start(nats_server, "o-notify")
    notified, normal = new_id(), new_id()
    notified_tap = await _tap(client, notified)
    normal_tap = await _tap(client, normal)
    try:
        started = _call_started(notified)
        context = {**started.data.context, MODE_CONTEXT_KEY: CampaignMode.NOTIFICATION.value}
        data = started.data.model_copy(update={"context": context})
        await _publish(client, started.model_copy(update={"data": data}))
        await _publish(client, _call_started(normal))
        # Claims are handled in stream order: once the second call is greeted, the first was seen.
        await _until(lambda: bool(normal_tap.says()), "the greeting of the ordinary call")
        assert not notified_tap.says()
        assert notified not in instance.orchestrator.conversations
    finally:
        await instance.service.stop()


_PIN_AGENT = """
name: PIN check
system_prompt: You check PINs.
greeting: Hello.
llm: {engine: scripted, options: {rules: [], default: OK.}}
stt: {engine: whisper-local, options: {language: en}}
tts: {engine: hibari, options: {voice: heart}}
flow:
  initial: pin
  nodes:
    - id: pin
      collect_digits: {variable: pin, min_length: 4, max_length: 4, next: done, sensitive: true}
      pre_actions: [{say: Key in your PIN.}]
    - id: done
      pre_actions: [{say: Thanks.}]
"""


async def test_keys_of_a_masked_keypad_come_on_their_own_subject_and_are_never_stored(
    nats_server: str, client: Client, tmp_path: Path
) -> None:
    (tmp_path / "pin.yaml").write_text(_PIN_AGENT)
    instance = await _start(nats_server, "o-pin", agents_dir=tmp_path)
    call_id = new_id()
    tap = await _tap(client, call_id)
    try:
        await _publish(client, _call_started(call_id, agent_id="pin"))
        await _until(lambda: bool(tap.of(MaskKeypad)), "the keypad masked")
        assert tap.of(MaskKeypad)[0].data.masked
        # What the gateway does while masked: '*' stored, the real keys on vb.keys only.
        real = DtmfReceived(tenant_id="acme", call_id=call_id, source=SOURCE,
                            data=DtmfReceivedData(digits="1234"))  # fmt: skip
        stored = real.model_copy(update={"data": DtmfReceivedData(digits="****", masked=True)})
        await _publish(client, stored)
        await client.publish(subjects.keys(call_id), real.to_bytes())
        await _until(lambda: len(tap.of(MaskKeypad)) == 2, "the keypad unmasked")
        assert not tap.of(MaskKeypad)[1].data.masked
        (moved,) = tap.of(FlowTransition)
        assert moved.data.to_node_id == "done"
        assert moved.data.arguments == {"pin": "****"}
        session = instance.orchestrator.conversations[call_id].session
        assert session.variables["pin"] == "1234"  # the real keys, not the stored stars
        assert not [e for e in tap.events if "1234" in e.model_dump_json()]
    finally:
        await instance.service.stop()
