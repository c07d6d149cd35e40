"""``voicebus call``: the scripted call, its transcript and exit code, against the fake server."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest
from caller_fake_twilio import TOKEN, FakeTwilioServer
from nats.js import JetStreamContext
from typer.testing import CliRunner

from voicebus.contracts.events import (
    AgentReply,
    AgentReplyData,
    CallEnded,
    CallEndedData,
    CallEvent,
    RecordingReady,
    RecordingReadyData,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.caller.events import follow_call_events
from voicebus.devkit.caller.script import CallScript, Line, run_call
from voicebus.devkit.cli import app
from voicebus.runtime.provision import provision

pytestmark = pytest.mark.integration


def _script(fake: FakeTwilioServer, *lines: str, **options: object) -> CallScript:
    return CallScript(
        gateway_url=fake.url,
        auth_token=TOKEN,
        agent="demo",
        lines=[Line(text=t) for t in lines],
        voice="tones",
        quiet_ms=400,
        reply_timeout=20,
        **options,
    )


class _Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, label: str, text: str, style: str) -> None:
        self.lines.append((label, text))

    def texts(self, label: str) -> list[str]:
        return [text for lab, text in self.lines if lab == label]


async def test_a_scripted_call_prints_lines_and_latencies(tmp_path: Path) -> None:
    out = _Lines()
    saved = tmp_path / "call.wav"
    async with FakeTwilioServer(greeting_ms=500).running() as fake:
        code = await run_call(_script(fake, "Hello there", "Thanks, bye", save_audio=saved), out)
    assert code == 0, out.lines
    assert out.texts("caller") == ["Hello there", "Thanks, bye"]
    assert [t.split(":")[0] for t in out.texts("latency")] == ["turn 1", "turn 2"]
    assert "the caller hung up" in out.texts("call")
    assert out.texts("error") == []
    with wave.open(str(saved)) as wav:
        assert wav.getnchannels() == 2
        assert wav.getframerate() == 8000
        assert wav.getnframes() > 8000


async def test_barge_in_speaks_over_the_reply() -> None:
    out = _Lines()
    async with FakeTwilioServer(greeting_ms=300, reply_ms=4000).running() as fake:
        code = await run_call(_script(fake, "Tell me all", "Stop", barge_in_ms=400), out)
    assert code == 0, out.lines
    summary = out.texts("summary")
    assert "turn 2 (barge-in)" in summary[1]
    assert "1 clear(s)" in summary[-1]


async def test_an_early_hang_up_fails_the_call() -> None:
    out = _Lines()
    async with FakeTwilioServer(greeting_ms=300, hang_up_after=1).running() as fake:
        code = await run_call(_script(fake, "Hello", "Are you there?"), out)
    assert code == 1
    assert "the agent hung up after line 1" in out.texts("error")
    assert "the agent hung up" in out.texts("call")


async def test_a_refused_webhook_fails_the_call() -> None:
    out = _Lines()
    async with FakeTwilioServer().running() as fake:
        script = _script(fake, "Hello")
        code = await run_call(
            CallScript(**{**script.__dict__, "auth_token": "wrong"}),
            out,
        )
    assert code == 1
    assert any("HTTP 403" in e for e in out.texts("error"))


async def test_call_events_are_followed_from_the_first(
    nats_url: str, jetstream: JetStreamContext
) -> None:
    await provision(jetstream)
    call_id = new_id()
    said = _transcript(call_id)
    await jetstream.publish(said.subject, said.to_bytes(), headers={"Nats-Msg-Id": said.id})
    seen: list[CallEvent] = []
    async with follow_call_events(nats_url, call_id, seen.append):
        ended = _ended(call_id)
        await jetstream.publish(ended.subject, ended.to_bytes())
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.05)
    assert [e.type for e in seen] == ["transcript.final.v1", "call.ended.v1"]


async def test_the_call_command_prints_the_platforms_view(
    nats_url: str, jetstream: JetStreamContext, tmp_path: Path
) -> None:
    await provision(jetstream)
    call_id = new_id()
    for event in (_transcript(call_id), _reply(call_id), _ended(call_id), _recording(call_id)):
        await jetstream.publish(event.subject, event.to_bytes())
    args = ["call", "Hello there", "--gateway", "", "--auth-token", TOKEN, "--voice", "tones"]
    args += ["--nats-url", nats_url, "--data-dir", str(tmp_path), "--context", "name=Ana"]
    async with FakeTwilioServer(greeting_ms=300, call_id=call_id).running() as fake:
        args[3] = fake.url
        result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    assert "where is my order" in result.output
    assert "Your order shipped." in result.output
    assert "ended: caller_hangup" in result.output
    assert "recordings/x.wav" in result.output
    assert "latency" in result.output
    assert fake.webhooks[0]["target"].endswith("?ctx_name=Ana")


def test_the_call_command_needs_something_to_say() -> None:
    result = CliRunner().invoke(app, ["call"])
    assert result.exit_code == 2
    assert "nothing to say" in result.output


def _transcript(call_id: str) -> TranscriptFinal:
    data = TranscriptFinalData(utterance_id="u1", text="where is my order", start_ms=0, end_ms=9)
    return TranscriptFinal(tenant_id="default", call_id=call_id, source="test/1", data=data)


def _reply(call_id: str) -> AgentReply:
    data = AgentReplyData(turn_id="t1", utterance_id="a1", text="Your order shipped.")
    return AgentReply(tenant_id="default", call_id=call_id, source="test/1", data=data)


def _ended(call_id: str) -> CallEnded:
    data = CallEndedData(reason="caller_hangup", duration_s=3.0)
    return CallEnded(tenant_id="default", call_id=call_id, source="test/1", data=data)


def _recording(call_id: str) -> RecordingReady:
    data = RecordingReadyData(
        recording_id="r1",
        uri="file:recordings/x.wav",
        sample_rate=8000,
        duration_s=3.0,
        bytes=96044,
        sha256="0" * 64,
    )
    return RecordingReady(tenant_id="default", call_id=call_id, source="test/1", data=data)
