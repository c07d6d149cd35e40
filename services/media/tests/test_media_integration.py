"""The real media service on a real nats-server: claim, hear, speak, barge-in, end.

A tiny fake orchestrator answers ``vb.rpc.orchestrator.agents.get``; the engines
are the fakes (the real local engines have their own test).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from fakes import FakeTTS
from media_bus_kit import (
    TENANT,
    Call,
    Stack,
    live_tasks,
    media_stack,
    metric,
    profile,
    subscribed,
    subscriptions,
    task_origin,
)
from media_kit import silence, until

from voicebus.contracts import subjects
from voicebus.contracts.events import CallStarted, CallStartedData
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.engines.base import TTS

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def stack(embedded_nats_factory: Callable[..., EmbeddedNats]) -> AsyncIterator[Stack]:
    async with media_stack(embedded_nats_factory()) as running:
        yield running


async def test_media_hears_speaks_is_cut_and_lets_go(
    stack: Stack, speech: dict[str, bytes]
) -> None:
    call = Call(stack)
    await call.listen()
    await asyncio.sleep(0.2)
    tasks_before = live_tasks()
    await call.announce()
    # Media subscribes first, then asks for the agent (the lookup may come a moment later).
    await until(lambda: bool(stack.lookups))
    assert [r.agent_id for r in stack.lookups] == ["demo"]

    # The caller speaks: speech events and the transcript land in VB_EVENTS.
    await call.speak(silence(500) + speech["order"] + silence(1000))
    await until(lambda: bool(call.of("transcript.final.v1")))
    assert [e.type for e in call.media_events] == [
        "speech.user.started.v1", "speech.user.stopped.v1", "transcript.final.v1",
    ]  # fmt: skip
    assert call.media_events[2].data.text == "where is my order"  # type: ignore[union-attr]
    assert call.media_events[2].source == "media/m1"
    during = [task_origin(t) for t in live_tasks() - tasks_before]
    assert any("pipecat" in o for o in during)  # the call's pipeline runs tasks...

    # The agent speaks: paced frames on audio.out, started, then stopped on the last mark.
    await call.say("a1", "Your order shipped.", "It arrives Monday.")  # 6 words: 780 ms
    await until(lambda: any(f.last for f in call.out))
    assert [f.seq for f in call.out] == list(range(39))
    assert {(len(f.pcm), f.utterance_id) for f in call.out} == {(320, "a1")}
    assert [f.last for f in call.out].count(True) == 1
    await call.mark("a1", 38, 780)
    await until(lambda: bool(call.of("agent.speech.stopped.v1")))
    assert call.of("agent.speech.started.v1")[0].data.text == "Your order shipped."
    assert call.of("agent.speech.stopped.v1")[0].data.played_ms == 780

    # Barge-in: caller speech over the agent clears the gateway and reports what was heard.
    # A long answer: the agent still has ~3 s to say when the caller speaks (speech over
    # an agent that has sent everything is the caller's turn, not an interruption).
    rest = " ".join(["more"] * 24) + "."
    await call.say("a2", "one two three four five.", "six seven eight nine.", rest)
    await until(lambda: sum(f.utterance_id == "a2" for f in call.out) >= 40)
    await call.mark("a2", 39 + 39, 800)  # 40 frames played: chunk one and 150 of 520 ms
    await asyncio.sleep(0.1)
    # Caller speech pauses the agent; its words, once the turn ends, cut it.
    await call.speak(speech["order"][: 16 * 1500] + silence(800))
    await until(lambda: bool(call.of("agent.speech.interrupted.v1")))
    cut = call.of("agent.speech.interrupted.v1")[0].data
    assert (cut.utterance_id, cut.text_heard, cut.played_ms) == (
        "a2",
        "one two three four five. six",
        800,
    )
    await until(lambda: bool(call.clears))
    assert call.clears[0].data.utterance_id == "a2"

    # Call end: media lets go of every per-call subscription and publishes nothing more.
    await call.end()
    call_subjects = {subjects.audio_in(call.call_id), subjects.audio_played(call.call_id),
                     subjects.ctl(call.call_id, subjects.CtlVerb.SAY)}  # fmt: skip
    await until(lambda: not call_subjects & set(subscriptions(stack.server)))
    settled = len(call.events)
    await call.speak(silence(300) + speech["order"] + silence(1000))
    await call.say("a3", "Anyone there?")
    await asyncio.sleep(1.0)
    assert len(call.events) == settled
    assert not any(f.utterance_id == "a3" for f in call.out)
    assert metric("voicebus_media_calls") == 0
    left = [task_origin(t) for t in live_tasks() - tasks_before]  # ...and none outlive it
    assert [o for o in left if "pipecat" in o or "voicebus" in o or call.call_id in o] == []


async def test_malformed_input_is_counted_and_ignored(
    stack: Stack, speech: dict[str, bytes]
) -> None:
    call = Call(stack)
    await call.start()
    before = {k: metric("voicebus_media_malformed_total", kind=k) for k in ("audio", "say", "mark")}
    nc, cid = stack.nc, call.call_id
    await nc.publish(subjects.audio_in(cid), b"\x00" * 320)  # no headers
    await nc.publish(
        subjects.audio_in(cid),
        b"\x00" * 321,
        headers={"VB-Rate": "8000", "VB-Seq": "1", "VB-Ts": "0"},
    )  # odd bytes
    await nc.publish(
        subjects.audio_in(cid),
        b"\x00" * 640,
        headers={"VB-Rate": "16000", "VB-Seq": "2", "VB-Ts": "20"},
    )  # not the call's rate
    await nc.publish(subjects.ctl(cid, subjects.CtlVerb.SAY), b"{not json")
    await nc.publish(subjects.ctl(cid, subjects.CtlVerb.SAY), b'{"type": "say.v1"}')
    await nc.publish(subjects.audio_played(cid), b"", headers={"VB-Seq": "x"})
    await nc.flush()
    await until(lambda: metric("voicebus_media_malformed_total", kind="mark") > before["mark"])
    assert metric("voicebus_media_malformed_total", kind="audio") == before["audio"] + 3
    assert metric("voicebus_media_malformed_total", kind="say") == before["say"] + 2
    # ... and the call goes on.
    await call.speak(silence(300) + speech["order"] + silence(1000))
    await until(lambda: bool(call.of("transcript.final.v1")))
    await call.end()


async def test_an_unknown_agent_gets_the_defaults_and_an_error_event(
    stack: Stack, speech: dict[str, bytes]
) -> None:
    call = Call(stack, agent_id="ghost")
    await call.start()
    await until(lambda: bool(call.of("call.error.v1")))
    error = call.of("call.error.v1")[0].data
    assert (error.code, error.service) == ("unknown_agent", "media")
    # The defaults (here the zero-cost null STT and silent TTS) serve the call.
    await call.say("a1", "Hello there caller.")
    await until(lambda: any(f.last for f in call.out))
    assert {f.pcm for f in call.out} == {bytes(320)}  # the silent engine
    await call.speak(silence(300) + speech["order"] + silence(1000))
    await until(lambda: bool(call.of("speech.user.stopped.v1")))
    await call.end()


async def test_without_an_orchestrator_the_call_is_served_with_defaults(
    embedded_nats_factory: Callable[..., EmbeddedNats],
) -> None:
    async with media_stack(embedded_nats_factory(), orchestrator=False) as stack:
        call = Call(stack)
        await call.start()
        await until(lambda: bool(call.of("call.error.v1")), timeout=10)
        error = call.of("call.error.v1")[0].data
        assert (error.code, error.retryable) == ("internal", True)
        await call.say("a1", "Still here.")
        await until(lambda: any(f.last for f in call.out))
        await call.end()


async def test_a_greeting_sent_right_after_the_claim_is_not_lost(
    stack: Stack,
) -> None:
    call = Call(stack)
    await call.listen()
    await call.publish(CallStarted(
        tenant_id=TENANT, call_id=call.call_id, source="gateway/test",
        data=CallStartedData(direction="inbound", provider="twilio", agent_id="demo",
                             gateway_instance="gw-test"),
    ))  # fmt: skip
    # As soon as media subscribes (before it has the agent's profile), the greeting goes.
    await until(lambda: subscribed(stack.server, subjects.ctl(call.call_id, subjects.CtlVerb.SAY)))
    await call.say("g1", "Hello, how can I help?")
    await until(lambda: any(f.last for f in call.out))
    assert stack.tts.texts[-1] == "Hello, how can I help?"
    await call.end()


async def test_a_handoff_agent_speaks_in_its_own_voice(
    embedded_nats_factory: Callable[..., EmbeddedNats],
) -> None:
    billing_voice = FakeTTS(ms_per_word=60)
    TTS.register("fake-tts-billing", lambda _options, _context: billing_voice)
    agents = {"demo": profile("demo"), "billing": profile("billing", tts="fake-tts-billing")}
    async with media_stack(embedded_nats_factory(), agents=agents) as stack:
        call = Call(stack)
        await call.start()
        await call.say("a1", "Support here.")
        await call.say("a2", "Billing here.", agent_id="billing")
        await call.say("a3", "Support again.", agent_id="demo")
        await call.say("a4", "Billing again.", agent_id="billing")
        # An agent media cannot look up keeps the voice the call has: the caller hears it.
        await call.say("a5", "Nobody knows me.", agent_id="ghost")
        await until(lambda: "Nobody knows me." in stack.tts.texts, timeout=10)
        assert stack.tts.texts == ["Support here.", "Support again.", "Nobody knows me."]
        assert billing_voice.texts == ["Billing here.", "Billing again."]
        # One lookup per agent: the call's at its start, then each new voice once.
        assert [r.agent_id for r in stack.lookups] == ["demo", "billing", "ghost"]
        errors = [e.data.code for e in call.of("call.error.v1")]
        assert errors == ["unknown_agent"]
        await call.end()
