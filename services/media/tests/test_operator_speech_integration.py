"""A person holding a call: their microphone on the out subject becomes ``human_said`` lines.

The real media service with the local STT (whisper) on a real nats-server; the operator's
voice is the dev kit's simulated caller voice, published as the edge publishes a
microphone after a take-over (PCM16LE at the call's rate, the take-over's utterance id).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from media_bus_kit import TENANT, Call, answer_agents, media_stack, profile, subscriptions
from media_kit import RATE, frames_of, silence, until

from voicebus.contracts import subjects
from voicebus.contracts.audio import encode_headers
from voicebus.contracts.events import (
    SupervisionEnded,
    SupervisionEndedData,
    SupervisionHandedBack,
    SupervisionHandedBackData,
    SupervisionTakenOver,
    SupervisionTakenOverData,
)
from voicebus.devkit.caller.voices import default_voice
from voicebus.devkit.embedded_nats import EmbeddedNats

pytestmark = pytest.mark.integration

OPERATOR = "key-op-7"


def words(text: str) -> set[str]:
    """Lower-case words: whisper may punctuate and contract either way."""
    return set(re.findall(r"[a-z0-9]+", text.lower()))


async def spoken(text: str) -> bytes:
    return b"".join([pcm async for pcm in default_voice().synthesize(text, RATE)])


async def record(
    call: Call, event: SupervisionTakenOver | SupervisionHandedBack | SupervisionEnded
) -> None:
    """Store a supervision event as the edge does (JetStream, deduplicated on its id)."""
    js = call.stack.nc.jetstream()
    await js.publish(event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id})


def take_over(call: Call, utterance_id: str) -> SupervisionTakenOver:
    data = SupervisionTakenOverData(operator=OPERATOR, utterance_id=utterance_id)
    return SupervisionTakenOver(tenant_id=TENANT, call_id=call.call_id, source="edge/test",
                                data=data)  # fmt: skip


def hand_back(call: Call) -> SupervisionHandedBack:
    data = SupervisionHandedBackData(operator=OPERATOR)
    return SupervisionHandedBack(tenant_id=TENANT, call_id=call.call_id, source="edge/test",
                                 data=data)  # fmt: skip


def listener_left(call: Call) -> SupervisionEnded:
    """Another operator, who was only listening, closes their supervision."""
    data = SupervisionEndedData(operator="key-listener")
    return SupervisionEnded(tenant_id=TENANT, call_id=call.call_id, source="edge/test",
                            data=data)  # fmt: skip


async def microphone(call: Call, pcm: bytes, utterance_id: str) -> None:
    """Frames on ``vb.audio.<call>.out`` carrying ``utterance_id``, as the edge sends them."""
    nc = call.stack.nc
    for n, frame in enumerate(frames_of(pcm)):
        headers = encode_headers(RATE, n, n * 20, utterance_id)
        await nc.publish(subjects.audio_out(call.call_id), frame.pcm, headers=headers)
    await nc.flush()


def out_listeners(server: EmbeddedNats, call: Call) -> int:
    """Subscriptions to the call's out audio (the test's own is one)."""
    return subscriptions(server).count(subjects.audio_out(call.call_id))


async def test_the_operators_speech_becomes_human_said_lines_only_while_they_hold_the_call(
    embedded_nats_factory: Callable[..., EmbeddedNats],
) -> None:
    apology = await spoken("I have applied the discount to your account.")
    agent_line = await spoken("Your order shipped yesterday.")
    thanks = await spoken("Thank you for waiting.")
    server = embedded_nats_factory()
    async with media_stack(server, orchestrator=False, default_stt="whisper-local",
                           default_tts="hibari") as stack:  # fmt: skip
        await answer_agents(stack.nc, {"local": profile("local", "whisper-local", "hibari")},
                            stack.lookups)  # fmt: skip
        call = Call(stack, agent_id="local")
        await call.start()
        assert out_listeners(server, call) == 1  # media does not hear out audio by default

        await record(call, take_over(call, "op-first"))
        await until(lambda: out_listeners(server, call) == 2, timeout=15)
        await record(call, listener_left(call))  # not the holder: the take-over goes on
        # The agent's own audio tail (another utterance id) is not the operator's.
        await microphone(call, silence(200) + agent_line + silence(900), "a-tail")
        await microphone(call, silence(300) + apology + silence(1200), "op-first")
        await until(lambda: bool(call.of("supervision.human_said.v1")), timeout=30)
        first = call.of("supervision.human_said.v1")
        assert len(first) == 1
        assert first[0].data.operator == OPERATOR
        assert first[0].data.via == "speech"
        assert {"applied", "discount", "account"} <= words(first[0].data.text)

        await record(call, hand_back(call))
        await until(lambda: out_listeners(server, call) == 1, timeout=15)
        # After the hand-back: the agent speaks again, and a late frame of the operator's
        # utterance comes; neither is transcribed.
        await call.say("a2", "Your order shipped yesterday.")
        await until(lambda: any(f.last and f.utterance_id == "a2" for f in call.out), timeout=30)
        await microphone(call, silence(300) + apology + silence(1200), "op-first")

        # A second take-over: its line is the next human_said, so nothing came in between.
        await record(call, take_over(call, "op-second"))
        await until(lambda: out_listeners(server, call) == 2, timeout=15)
        await microphone(call, silence(300) + thanks + silence(1200), "op-second")
        await until(lambda: len(call.of("supervision.human_said.v1")) >= 2, timeout=30)
        lines = call.of("supervision.human_said.v1")
        assert len(lines) == 2
        assert "waiting" in words(lines[1].data.text)
        assert call.of("transcript.final.v1") == []  # the caller said nothing
        assert call.of("call.error.v1") == []
        await call.end()
