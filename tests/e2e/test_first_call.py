"""The first call, end to end: a simulated Twilio caller talks to the demo agent through the
real gateway WebSocket, with every service running as its own process on a real NATS
(JetStream) and a real PostgreSQL, the scripted LLM and the real local STT and TTS.

The caller greets, asks about an order, barges in on the long answer, and says goodbye;
the agent hangs up after its goodbye has played.
"""

from __future__ import annotations

import asyncio
import json
import re
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import numpy as np
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from voicebus.contracts import subjects
from voicebus.contracts.events import (
    AgentSpeechInterrupted,
    AgentSpeechStopped,
    CallEnded,
    CallEvent,
    EndReason,
    RecordingReady,
    TranscriptFinal,
    parse_event,
)
from voicebus.contracts.streams import SESSIONS
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.stack import DevStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

LINES = ("Hi, where is my order 1234?", "Hello?", "Thanks, bye.")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[DevStack, Path]]:
    data_dir = tmp_path_factory.mktemp("stack")
    recordings = data_dir / "recordings"
    log = (data_dir / "services.log").open("w")
    # Every service logs in as itself (the dev stack's default), with the permissions
    # voicebus nats-config ships.
    dev = DevStack(data_dir, out=log, local_llm=False, env={"VB_RECORDER_DIR": str(recordings)})
    try:
        await dev.start(ready_timeout=240.0)
        yield dev, recordings
    finally:
        await dev.stop()
        log.close()


async def _events_of(nats_url: str, call_id: str) -> list[CallEvent]:
    """Every stored event of the call, in stream order."""
    nc = await nats.connect(nats_url)
    events: list[CallEvent] = []
    try:
        js = nc.jetstream()
        sub = await js.subscribe(
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


async def _history(nats_url: str, call_id: str) -> list[dict[str, Any]]:
    nc = await nats.connect(nats_url)
    try:
        kv = await nc.jetstream().key_value(SESSIONS.bucket)
        entry = await kv.get(call_id)
        assert entry.value is not None
        history: list[dict[str, Any]] = json.loads(entry.value)["history"]
        return history
    finally:
        await nc.drain()


async def _wait_for(
    nats_url: str, call_id: str, kind: type[Any], timeout: float = 30.0
) -> list[CallEvent]:
    async with asyncio.timeout(timeout):
        while True:
            events = await _events_of(nats_url, call_id)
            if any(isinstance(e, kind) for e in events):
                return events
            await asyncio.sleep(0.5)


async def test_a_call_with_a_barge_in_and_a_goodbye(stack: tuple[DevStack, Path]) -> None:
    dev, recordings = stack
    gateway = next(s.url for s in dev.services if s.name == "gateway")
    assert dev.nats_url is not None
    assert dev.database_url is not None
    context = {"customer_name": "Ada"}
    async with TwilioCaller(gateway, DEV_TWILIO_AUTH_TOKEN, "demo-scripted", context) as call:
        call_id = call.call_id
        assert call_id is not None
        assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=60)  # the greeting

        first = await call.say_text(LINES[0])
        # The answer is long; cut in once it has played for a while.
        assert await call.wait_for_agent_audio(ms=1500, timeout=60)
        barge = await call.say_text(LINES[1])
        events = await _wait_for(dev.nats_url, call_id, AgentSpeechInterrupted)
        interrupted = next(e for e in events if isinstance(e, AgentSpeechInterrupted))
        assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=60)
        history = await _history(dev.nats_url, call_id)

        bye = await call.say_text(LINES[2])
        assert await call.wait_closed(timeout=60), "the agent did not hang up"
    result = await call.hang_up()

    # The caller heard the agent answer every line, and the call ended from the agent's side.
    assert result.server_closed
    assert result.protocol_errors == []
    assert first.first_agent_audio_ms is not None
    assert barge.first_agent_audio_ms is not None
    assert bye.first_agent_audio_ms is not None
    assert result.heard_ms > 5000

    # Barge-in: the caller got a Twilio clear, and history keeps only what was heard.
    assert result.clears_received >= 1
    heard = interrupted.data.text_heard
    assert len(heard) < len(interrupted.data.text_planned)
    assert interrupted.data.text_planned.startswith(heard)
    spoken = [m for m in history if m.get("utterance_id") == interrupted.data.utterance_id]
    assert [m["content"] for m in spoken] == [heard]

    # Everything the platform said happened, in the stored events.
    events = await _wait_for(dev.nats_url, call_id, RecordingReady, timeout=60)
    finals = [e.data.text for e in events if isinstance(e, TranscriptFinal)]
    assert [_words(t) for t in finals] == [_words(line) for line in LINES]
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert len(ended) == 1
    assert ended[0].data.reason is EndReason.AGENT_HANGUP
    # end_call hung up only after the goodbye had played.
    goodbye = [e for e in events if isinstance(e, AgentSpeechStopped)][-1]
    assert "goodbye" in goodbye.data.text.lower()
    assert events.index(goodbye) < events.index(ended[0])

    # The recording: stereo, the call's length, the caller on the left, the agent on the right.
    recording = next(e for e in events if isinstance(e, RecordingReady))
    path = recordings / recording.data.uri.removeprefix("file:")
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 2
        frames = wav.readframes(wav.getnframes())
        duration = wav.getnframes() / wav.getframerate()
    assert ended[0].data.duration_s is not None
    assert abs(duration - ended[0].data.duration_s) < 1.0
    stereo = np.frombuffer(frames, "<i2").reshape(-1, 2).astype(np.float64)
    left, right = np.sqrt((stereo**2).mean(axis=0))
    assert left > 100
    assert right > 100

    # Audit holds every event of the call exactly once.
    conn = await asyncpg.connect(dev.database_url)
    try:
        for _ in range(100):  # audit consumes asynchronously
            rows = await conn.fetch("SELECT id FROM audit.call_events WHERE call_id = $1", call_id)
            if len(rows) >= len(events):
                break
            await asyncio.sleep(0.2)
        status = await conn.fetchval("SELECT status FROM audit.calls WHERE call_id = $1", call_id)
    finally:
        await conn.close()
    assert sorted(r["id"] for r in rows) == sorted(e.id for e in events)
    assert status == "ended"

    # Nothing any service did was outside what its NATS user is allowed.
    assert dev.permission_violations() == []
