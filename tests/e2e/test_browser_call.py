"""A browser call, end to end: a real headless Chromium opens the edge's page, picks the
scripted demo agent and talks to it through its (fake) microphone, with every service
running as its own process on a real NATS (JetStream) and a real PostgreSQL, the scripted
LLM and the real local STT and TTS. The same stack replays a recorded call's audio and
runs scenario evals as calls (``voicebus replay --audio``, ``voicebus eval --audio``,
which talk to the gateway as a browser page does).

The microphone plays a WAV file of the caller's line, synthesized at test time with the
dev kit's caller voice; the page shows the live transcript and plays the agent's answer.
The page comes from the edge, which asks the gateway for the call; the page's audio then
flows over the gateway's media WebSocket.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import re
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from typer.testing import CliRunner

from voicebus.cli.audio_replay import CallerAudio, play
from voicebus.cli.edge import DEV_ADMIN_TOKEN
from voicebus.cli.main import operator_app
from voicebus.contracts import subjects
from voicebus.contracts.events import (
    AgentSpeechStopped,
    CallEnded,
    CallEvent,
    CallInitiated,
    CallStarted,
    EndReason,
    TranscriptFinal,
    parse_event,
)
from voicebus.contracts.replay import ReplayReport
from voicebus.devkit.browser import Chromium, Page, find_chromium
from voicebus.devkit.caller.voices import default_voice
from voicebus.devkit.stack import DevStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

AGENT = "demo-scripted"
LINE = "Hi, where is my order 1234?"
BYE = "Thanks, bye."
WAV_RATE = 48000
LEAD_S = 6.0
"""Silence before the line: the agent's greeting plays first."""
TAIL_S = 2.0


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _heard_as(heard: str, said: str) -> bool:
    """Whether the STT heard ``said`` through Chromium's microphone: every number exact and
    at most one other word in six misheard.

    The page's capture runs on Chromium's real-time audio thread: on a loaded machine it
    glitches, and whisper then hears a homophone ("hi" as "high"). Audio sent over the
    WebSocket without a browser (the replay and eval tests below, the provider tests) is
    compared word for word.
    """
    got, want = _words(heard), _words(said)
    numbers = [w for w in got if w.isdigit()] == [w for w in want if w.isdigit()]
    similar = difflib.SequenceMatcher(a=got, b=want).ratio() >= 0.8
    return numbers and similar


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    log = (data_dir / "services.log").open("w")
    dev = DevStack(data_dir, out=log, local_llm=False)
    try:
        await dev.start(ready_timeout=240.0)
        yield dev
        # Nothing any service did was outside what its NATS user is allowed.
        assert dev.permission_violations() == []
    finally:
        await dev.stop()
        log.close()


async def _write_wav(path: Path, lines: list[tuple[float, str]]) -> Path:
    """A 48 kHz mono WAV of ``(silence_s, text)`` pairs, in order, ending in silence."""
    voice = default_voice()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(WAV_RATE)
        for silence_s, text in lines:
            wav.writeframes(bytes(2 * int(WAV_RATE * silence_s)))
            async for chunk in voice.synthesize(text, WAV_RATE):
                wav.writeframes(chunk)
        wav.writeframes(bytes(2 * int(WAV_RATE * TAIL_S)))
    return path


@pytest.fixture
async def caller_wav(tmp_path: Path) -> Path:
    """The caller's line, after silence while the greeting plays."""
    return await _write_wav(tmp_path / "caller.wav", [(LEAD_S, LINE)])


async def _events_of(nats_url: str, call_id: str) -> list[CallEvent]:
    """Every stored event of the call, in stream order."""
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


async def _wait_for_event(nats_url: str, call_id: str, kind: type[Any]) -> list[CallEvent]:
    async with asyncio.timeout(60):
        while True:
            events = await _events_of(nats_url, call_id)
            if any(isinstance(e, kind) for e in events):
                return events
            await asyncio.sleep(0.5)


async def _state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate("window.voicebus")
    return state


async def _ignored_browser_messages(gateway: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{gateway}/metrics")).text
    pattern = r'^voicebus_gateway_ws_messages_ignored_total\{[^}]*provider="browser"[^}]*\} (\S+)$'
    return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE))


async def test_a_person_talks_to_an_agent_from_the_browser(
    stack: DevStack, caller_wav: Path, tmp_path: Path
) -> None:
    assert find_chromium() is not None, "Chromium is missing: run scripts/install-browser.sh"
    assert stack.nats_url is not None
    gateway = next(s.url for s in stack.services if s.name == "gateway")
    edge = next(s.url for s in stack.services if s.name == "edge")

    async with Chromium(tmp_path / "profile", fake_microphone=caller_wav) as browser:
        page = await browser.open(f"{edge}/browser")
        # The page offers the orchestrator's agents; pick the scripted one.
        await page.wait_for(f"window.voicebus.agents.includes({AGENT!r})", timeout=30)
        await page.evaluate(f"document.getElementById('agent').value = {AGENT!r}")
        await page.evaluate("document.getElementById('start').click()")
        call_id = await page.wait_for("window.voicebus.status === 'live' && window.voicebus.callId")

        # The caller's line shows on the page, then the agent's answer, which plays.
        caller_line = (
            "window.voicebus.transcript.find(l => l.role === 'caller')"
            " && window.voicebus.transcript.find(l => l.role === 'caller').text"
        )
        heard = await page.wait_for(caller_line, timeout=120)
        answer = "window.voicebus.transcript.some(l => l.role === 'agent' && /1234/.test(l.text))"
        await page.wait_for(answer, timeout=60)
        greeting_and_answer = 16000 * 2 * 4  # bytes: at least 4 s of 16 kHz PCM16
        await page.wait_for(f"window.voicebus.audioBytes > {greeting_and_answer}", timeout=60)
        await page.wait_for("window.voicebus.marksEchoed > 0", timeout=30)

        await page.evaluate("document.getElementById('hangup').click()")
        await page.wait_for("window.voicebus.status === 'ended'", timeout=30)
        state = await _state(page)
        console = list(page.console)

    assert state["error"] is None, console
    assert state["format"] == {"encoding": "f32le", "sample_rate": 48000}
    assert state["framesSent"] > 50 * (LEAD_S + 1)  # 20 ms frames, at least the lead-in
    assert state["audioMessages"] > 0
    assert state["marksReceived"] >= state["marksEchoed"] > 0
    assert _heard_as(heard, LINE), heard
    agent_lines = [line["text"] for line in state["transcript"] if line["role"] == "agent"]
    assert agent_lines[0].startswith("Hi there, this is Acme support")  # the greeting
    assert any("1234" in text for text in agent_lines)

    events = await _wait_for_event(stack.nats_url, call_id, CallEnded)
    initiated = [e for e in events if isinstance(e, CallInitiated)]
    assert [e.data.provider for e in initiated] == ["browser"]
    started = [e for e in events if isinstance(e, CallStarted)]
    assert len(started) == 1
    assert started[0].data.provider == "browser"
    assert started[0].data.agent_id == AGENT
    assert started[0].data.audio.sample_rate == 16000
    finals = [e.data.text for e in events if isinstance(e, TranscriptFinal)]
    assert len(finals) == 1
    assert _heard_as(finals[0], LINE), finals
    # The page echoed marks: the platform knows the greeting was heard.
    assert any(isinstance(e, AgentSpeechStopped) for e in events)
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert len(ended) == 1
    assert ended[0].data.reason is EndReason.CALLER_HANGUP
    assert await _ignored_browser_messages(gateway) == 0


async def test_the_agent_hangs_up_after_its_goodbye_played_in_the_browser(
    stack: DevStack, tmp_path: Path
) -> None:
    # The goodbye comes once the answer has played (~8 s): no barge-in.
    wav = await _write_wav(tmp_path / "caller.wav", [(LEAD_S, LINE), (14.0, BYE)])
    assert stack.nats_url is not None
    edge = next(s.url for s in stack.services if s.name == "edge")

    async with Chromium(tmp_path / "profile", fake_microphone=wav) as browser:
        # This page sends PCM16 at 16 kHz (the first test: Float32 at 48 kHz).
        page = await browser.open(f"{edge}/browser?format=s16le")
        await page.evaluate(f"document.getElementById('agent').value = {AGENT!r}")
        await page.evaluate("document.getElementById('start').click()")
        call_id = await page.wait_for("window.voicebus.status === 'live' && window.voicebus.callId")
        # end_call hangs up once the page reported (marks) that the goodbye played.
        await page.wait_for("window.voicebus.status === 'ended'", timeout=150)
        state = await _state(page)

    assert state["closeCode"] == 1000
    assert state["format"] == {"encoding": "s16le", "sample_rate": 16000}
    callers = [line["text"] for line in state["transcript"] if line["role"] == "caller"]
    assert len(callers) == 2, callers
    assert _heard_as(callers[0], LINE), callers
    assert _heard_as(callers[1], BYE), callers
    events = await _wait_for_event(stack.nats_url, call_id, CallEnded)
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert len(ended) == 1
    assert ended[0].data.reason is EndReason.AGENT_HANGUP
    goodbye = [e for e in events if isinstance(e, AgentSpeechStopped)][-1]
    assert "goodbye" in goodbye.data.text.lower()
    assert events.index(goodbye) < events.index(ended[0])


def _orders_agent(order: dict[str, Any]) -> dict[str, Any]:
    """An agent with the demo's local voice and ears; ``order`` is what it does when the
    caller mentions an order."""
    rules = [{"match": r"\border\b", **order}]
    return {
        "name": "Orders", "system_prompt": "You help.", "greeting": "Hi, this is Acme.",
        "goodbye": "Goodbye!", "tools": [{"type": "end_call"}],
        "llm": {"engine": "scripted", "options": {"rules": rules, "default": "Sorry?"}},
        "stt": {"engine": "whisper-local", "options": {"language": "en"}},
        "tts": {"engine": "hibari", "options": {"voice": "heart"}},
    }  # fmt: skip


async def test_a_recorded_call_is_heard_again_by_the_stack_against_another_version(
    stack: DevStack,
) -> None:
    """``voicebus replay --audio``: the recording's caller channel is played into a new call,
    and the two conversations are compared (what was heard, the agent's actions, latency)."""
    edge = next(s.url for s in stack.services if s.name == "edge")
    async with httpx.AsyncClient(base_url=f"{edge}/api/v1", timeout=30) as http:
        admin = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
        tenant = {"tenant_id": "replayer", "name": "Replayer"}
        created = await http.post("/tenants", headers=admin, json=tenant)
        assert created.status_code == 201, created.text
        key = await http.post("/tenants/replayer/keys", headers=admin,
                              json={"name": "ci", "scopes": ["admin"]})  # fmt: skip
        token = key.json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        v1 = _orders_agent({"reply": "Sure, what is your order number?"})
        made = await http.post("/agents", headers=bearer, json={"agent_id": "orders",
                                                                "definition": v1})  # fmt: skip
        assert made.status_code == 201, made.text
        # Version 2 (live from now on) hangs up instead of asking for the number.
        v2 = _orders_agent({"tool": "end_call"})
        saved = await http.put("/agents/orders", headers=bearer,
                               json={"definition": v2, "expected_version": 1})  # fmt: skip
        assert saved.status_code == 200, saved.text

        # The call to replay runs version 1, pinned: greeting, the caller's line, an answer.
        session = await http.post("/browser-sessions", headers=bearer,
                                  json={"agent_id": "orders", "agent_version": 1})  # fmt: skip
        assert session.status_code == 201, session.text
        call_id = session.json()["call_id"]
        line = b"".join([c async for c in default_voice().synthesize(LINE, 16000)])
        caller = CallerAudio(bytes(2 * 16000 * 3) + line + bytes(2 * 16000 * 2), 16000)
        hung_up = await play(session.json()["ws_url"], session.json()["parameters"], caller,
                             quiet_s=2.0, limit_s=90)  # fmt: skip
        assert not hung_up
        async with asyncio.timeout(60):  # until the recorder has stored the recording
            while (await http.get(f"/calls/{call_id}/recording", headers=bearer)).is_error:
                await asyncio.sleep(0.5)

    args = ["replay", call_id, "--audio", "--assert", "--json", "--url", edge, "--api-key", token]
    ran = await asyncio.to_thread(CliRunner().invoke, operator_app(), args)
    assert ran.exit_code == 1, ran.output  # the agent's actions differ: --assert fails
    report = ReplayReport.model_validate_json(ran.stdout)
    assert (report.original_version, report.replayed_version) == (1, 2)
    original, replayed = report.original, report.replayed
    # The stack heard the same words again, from the recording.
    assert original[1].caller is not None
    assert replayed[1].caller is not None
    assert _words(original[1].caller.text or "") == _words(LINE)
    assert _words(replayed[1].caller.text or "") == _words(LINE)
    assert original[1].reply == "Sure, what is your order number?"
    assert [t.name for t in replayed[1].tools] == ["end_call"]
    assert replayed[1].ended
    kinds = {(d.turn, d.kind) for d in report.differences}
    assert {(1, "tools"), (1, "end")} <= kinds
    assert (1, "caller") not in kinds
    # Each side's turn was timed: end of the caller's speech to the agent's first audio.
    assert original[1].latency_ms is not None
    assert replayed[1].latency_ms is not None


SCENARIOS = """
agent: demo-scripted
context: {customer_name: Ada}
scenarios:
  - name: a known order is looked up
    greeting: {reply_contains: [Hi Ada]}
    turns:
      - say: Hi, where is my order 1234?
        expect:
          tools: [{name: check_order_status, arguments: {order_id: "1234"}}]
          reply_contains: [shipped]
      - say: Thank you
        wav: thanks.wav
        expect: {reply_contains: welcome, no_tools: true}
    expect: {ended: false, latency_p95_ms: 60000}
  - name: goodbye ends the call
    turns:
      - say: That's all, bye
        expect: {tools: [{name: end_call}], ended: true}
"""


async def test_scenarios_run_as_real_calls_with_spoken_lines_and_timed_turns(
    stack: DevStack, tmp_path: Path
) -> None:
    """``voicebus eval --audio``: each scenario a browser call through the whole stack, its
    lines spoken (the local voice, or a WAV file), its turns timed against a budget."""
    edge = next(s.url for s in stack.services if s.name == "edge")
    async with httpx.AsyncClient(base_url=f"{edge}/api/v1", timeout=30) as http:
        admin = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
        tenant = {"tenant_id": "evaluator", "name": "Evaluator"}
        assert (await http.post("/tenants", headers=admin, json=tenant)).status_code == 201
        key = await http.post("/tenants/evaluator/keys", headers=admin,
                              json={"name": "ci", "scopes": ["admin"]})  # fmt: skip
        token = key.json()["token"]
    thanks = b"".join([c async for c in default_voice().synthesize("Thank you", 16000)])
    with wave.open(str(tmp_path / "thanks.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(thanks)
    (tmp_path / "scenarios.yaml").write_text(SCENARIOS)
    out = tmp_path / "report"
    args = ["eval", str(tmp_path / "scenarios.yaml"), "--audio", "--out", str(out),
            "--url", edge, "--api-key", token]  # fmt: skip
    ran = await asyncio.to_thread(CliRunner().invoke, operator_app(), args)
    assert ran.exit_code == 0, ran.output
    assert "2 of 2 scenario(s) passed" in ran.output
    report = json.loads((out / "report.json").read_text())
    looked_up, goodbye = report["scenarios"]
    heard = [t["caller"]["text"] for t in looked_up["turns"][1:]]
    assert [_words(h) for h in heard] == [_words("Hi, where is my order 1234?"), ["thank", "you"]]
    assert all(t["latency_ms"] is not None for t in looked_up["turns"][1:])
    assert goodbye["turns"][-1]["ended"] is True
    assert "latency" not in " ".join(looked_up["skipped"])  # measured, so not skipped
