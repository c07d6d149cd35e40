"""One call is one trace: gateway, media, orchestrator and audit spans under the gateway's
``call`` span, exported over OTLP/HTTP to a receiver inside the test.

The caller asks for an order's status, so the turn runs speech to text, the scripted
LLM, a data tool and speech synthesis; audit stores every event of the call.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.observe.otlp import OtlpReceiver, ReceivedSpan
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.stack import DevStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SERVICES = {"voicebus-gateway", "voicebus-media", "voicebus-orchestrator", "voicebus-audit"}


class Trace:
    """The spans of one trace, with their parent links."""

    def __init__(self, spans: list[ReceivedSpan]) -> None:
        self.spans = spans
        self.by_id = {s.span_id: s for s in spans}

    def named(self, name: str, service: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name and s.service == service]

    def ancestors(self, span: ReceivedSpan) -> list[ReceivedSpan]:
        found: list[ReceivedSpan] = []
        while span.parent_id and (parent := self.by_id.get(span.parent_id)) is not None:
            found.append(parent)
            span = parent
        return found

    def under(self, span: ReceivedSpan, ancestor: ReceivedSpan) -> bool:
        return ancestor in self.ancestors(span)

    def complete(self) -> bool:
        """Every parent was received (the services export on their own schedules)."""
        return all(not s.parent_id or s.parent_id in self.by_id for s in self.spans)


def _call_trace(otlp: OtlpReceiver, call_id: str) -> tuple[ReceivedSpan, Trace] | None:
    spans = otlp.snapshot()
    roots = [
        s
        for s in spans
        if s.name == "call" and s.service == "voicebus-gateway"
        and s.attributes.get("voicebus.call_id") == call_id
    ]  # fmt: skip
    if not roots:
        return None
    (root,) = roots
    return root, Trace([s for s in spans if s.trace_id == root.trace_id])


def _shaped(found: tuple[ReceivedSpan, Trace] | None) -> bool:
    if found is None:
        return False
    _root, tr = found
    wanted = [
        ("turn", "voicebus-media"), ("stt", "voicebus-media"), ("tts", "voicebus-media"),
        ("agent.turn", "voicebus-orchestrator"), ("llm", "voicebus-orchestrator"),
        ("tool", "voicebus-orchestrator"), ("audit.store", "voicebus-audit"),
    ]  # fmt: skip
    return tr.complete() and all(tr.named(n, s) for n, s in wanted)


async def test_one_call_is_one_trace_across_four_services(
    stack: DevStack, otlp: OtlpReceiver
) -> None:
    gateway = next(s.url for s in stack.services if s.name == "gateway")
    async with TwilioCaller(gateway, DEV_TWILIO_AUTH_TOKEN, "demo-scripted") as call:
        call_id = call.call_id
        assert call_id is not None
        assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=90), "no greeting"
        await call.say_text("What is the status of order 1234?")
        assert await call.wait_for_agent_audio(ms=1000, timeout=90), "no answer"
        await call.hang_up()

    deadline = time.monotonic() + 90  # batch exporters send every few seconds
    found = _call_trace(otlp, call_id)
    while not _shaped(found) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        found = _call_trace(otlp, call_id)
    assert found is not None, f"no call span for {call_id}; {otlp.requests} exports seen"
    root, tr = found

    # The gateway's call span is the root; every span of the trace descends from it.
    assert root.parent_id == ""
    assert {s.service for s in tr.spans} >= SERVICES, sorted({s.service for s in tr.spans})
    assert tr.complete(), "a span's parent never arrived"
    assert all(tr.under(s, root) for s in tr.spans if s is not root)
    assert len({s.attributes.get("voicebus.call_id") for s in tr.spans} - {None}) == 1

    # Media: a turn span per caller turn; speech to text inside it.
    turns = tr.named("turn", "voicebus-media")
    assert turns, "no turn span"
    for stt in tr.named("stt", "voicebus-media"):
        assert tr.by_id[stt.parent_id] in turns
    assert any("end_of_turn" in t.events for t in turns)

    # Orchestrator: its turn answers the media turn's transcript; LLM and tool inside it.
    agent_turns = tr.named("agent.turn", "voicebus-orchestrator")
    assert agent_turns
    assert all(any(tr.under(a, t) for t in turns) for a in agent_turns)
    llms = tr.named("llm", "voicebus-orchestrator")
    assert llms
    assert all(tr.by_id[s.parent_id] in agent_turns for s in llms)
    assert any("first_token" in s.events for s in llms)
    tools = tr.named("tool", "voicebus-orchestrator")
    assert [t.attributes.get("voicebus.tool") for t in tools] == ["check_order_status"]
    assert all(any(tr.under(t, a) for a in agent_turns) for t in tools)

    # Media's speech synthesis follows the orchestrator's ctl.say: the answer's TTS is
    # inside the orchestrator's turn, the greeting's directly under the call.
    tts = tr.named("tts", "voicebus-media")
    assert any(any(tr.under(s, a) for a in agent_turns) for s in tts), "answer not traced"
    assert any(not any(tr.under(s, a) for a in agent_turns) for s in tts), "greeting?"
    assert all("first_audio" in s.events for s in tts if s.attributes.get("voicebus.seq") == 0)

    # Audit: each stored event of the call is a span under the publisher's span.
    stored = tr.named("audit.store", "voicebus-audit")
    assert len(stored) >= 4  # call.started, speech, transcript, call.ended at least
    publishers = {tr.by_id[s.parent_id].service for s in stored}
    assert {"voicebus-gateway", "voicebus-media", "voicebus-orchestrator"} <= publishers
