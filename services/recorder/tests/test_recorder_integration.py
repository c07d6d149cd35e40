"""The recorder service on a real nats-server: claim, record both sides, announce."""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import numpy as np
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from numpy.typing import NDArray
from prometheus_client import REGISTRY

from voicebus.contracts import subjects
from voicebus.contracts.audio import encode_headers
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    FlowNodeEntered,
    FlowNodeEnteredData,
    RecordingReady,
)
from voicebus.contracts.ids import new_id
from voicebus.recorder.app import build
from voicebus.recorder.settings import RecorderSettings
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service

pytestmark = pytest.mark.integration

RATE = 8000
FRAME = 160
TENANT = "acme"


@dataclass
class _Rig:
    service: Service
    nc: Client
    dir: Path
    monitor_url: str
    ready: list[RecordingReady]


@pytest.fixture
async def rig(embedded_nats_factory: Callable[..., Any], tmp_path: Path) -> AsyncIterator[_Rig]:
    server = embedded_nats_factory()
    settings = RecorderSettings(nats_url=server.url, instance_id="r1", dir=tmp_path)
    service, _app = build(settings)
    await service.start()
    nc = await nats.connect(server.url)
    ready: list[RecordingReady] = []

    async def on_ready(msg: Msg) -> None:  # never answers msg.reply: JetStream acks the publish
        ready.append(RecordingReady.model_validate_json(msg.data))

    await nc.subscribe(subjects.evt_filter(TENANT, event_type="recording.ready"), cb=on_ready)
    try:
        yield _Rig(service, nc, tmp_path, server.monitor_url, ready)
    finally:
        await nc.drain()
        await service.stop()


def _started(call_id: str) -> CallStarted:
    return CallStarted(
        tenant_id=TENANT, call_id=call_id, source="test/1",
        data=CallStartedData(direction=Direction.INBOUND, provider="twilio", agent_id="demo",
                             gateway_instance="gw"),
    )  # fmt: skip


async def _until(condition: Callable[[], Any], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def _subscribers(monitor_url: str, subject: str) -> int:
    url = f"{monitor_url}/subsz?subs=1&test={subject}"
    with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310  # the test's own server
        return int(json.load(reply)["total"])


async def _wait_for_subscriber(monitor_url: str, subject: str) -> None:
    """Until the server routes ``subject`` to someone (its monitoring endpoint says so)."""
    async with asyncio.timeout(20):
        while not await asyncio.to_thread(_subscribers, monitor_url, subject):
            await asyncio.sleep(0.05)


async def _claimed(rig: _Rig, call_id: str) -> None:
    await publish_event(rig.service.broker, _started(call_id))
    await _wait_for_subscriber(rig.monitor_url, subjects.audio_in(call_id))
    await _wait_for_subscriber(rig.monitor_url, subjects.audio_out(call_id))


async def _frame(nc: Client, subject: str, seq: int, ts_ms: int, value: int) -> None:
    pcm = np.full(FRAME, value, dtype="<i2").tobytes()
    await nc.publish(subject, pcm, headers=encode_headers(RATE, seq, ts_ms))


def _frames_counted(direction: str, result: str) -> float:
    labels = {"direction": direction, "result": result}
    return REGISTRY.get_sample_value("voicebus_recorder_frames_total", labels) or 0.0


def _counts(*keys: tuple[str, str]) -> dict[tuple[str, str], float]:
    return {key: _frames_counted(*key) for key in keys}


async def _until_counted(
    before: dict[tuple[str, str], float], expected: dict[tuple[str, str], float]
) -> None:
    """Until the recorder has handled ``expected`` more frames per (direction, result).

    The test's own flush only proves that the server took the frames, not that the
    recorder's connection received them: this waits for the recorder itself.
    """
    await _until(
        lambda: all(_frames_counted(*key) - before[key] >= n for key, n in expected.items())
    )


def _read(path: Path) -> tuple[wave._wave_params, NDArray[np.int16]]:
    with wave.open(str(path)) as reader:
        params = reader.getparams()
        frames = reader.readframes(params.nframes)
    return params, np.frombuffer(frames, dtype="<i2").reshape(-1, 2)


async def test_a_call_is_recorded_in_stereo_and_announced_when_it_ends(rig: _Rig) -> None:
    call_id = new_id()
    await _claimed(rig, call_id)
    before = {(d, r): _frames_counted(d, r) for d in ("in", "out") for r in ("placed", "invalid")}
    audio_in, audio_out = subjects.audio_in(call_id), subjects.audio_out(call_id)
    for seq in range(100):  # caller: 2 s, each frame a distinct level
        await _frame(rig.nc, audio_in, seq, seq * 20, seq + 1)
    for seq in reversed(range(30)):  # agent: 0.6 s from 500 ms, arriving backwards
        await _frame(rig.nc, audio_out, seq, 500 + seq * 20, -(seq + 1))
    # Garbage from outside is counted and ignored, never fatal.
    await rig.nc.publish(audio_in, b"no headers")
    await rig.nc.publish(audio_in, b"\x01\x02\x03", headers=encode_headers(RATE, 1, 20))
    await rig.nc.publish(audio_out, b"\x00\x00", headers={"VB-Rate": "11025"})
    await rig.nc.flush()
    expected = {("in", "placed"): 100, ("out", "placed"): 30, ("in", "invalid"): 2}
    await _until_counted(before, {**expected, ("out", "invalid"): 1})
    ended = CallEnded(
        tenant_id=TENANT, call_id=call_id, source="test/1",
        data=CallEndedData(reason=EndReason.CALLER_HANGUP, duration_s=2.5),
    )  # fmt: skip
    await publish_event(rig.service.broker, ended)
    await _until(lambda: rig.ready)

    event = rig.ready[0]
    assert event.call_id == call_id
    data = event.data
    assert data.uri == f"file:{TENANT}/{call_id}.wav"
    path = rig.dir / data.uri.removeprefix("file:")
    content = path.read_bytes()
    assert data.bytes == len(content) == 44 + int(2.5 * RATE) * 4
    assert data.sha256 == hashlib.sha256(content).hexdigest()
    assert (data.format, data.channels, data.sample_rate, data.duration_s) == ("wav", 2, RATE, 2.5)

    params, samples = _read(path)
    assert (params.nchannels, params.framerate) == (2, RATE)
    assert params.nframes == int(2.5 * RATE)  # padded to the call's duration
    left, right = samples[:, 0], samples[:, 1]
    for seq in range(100):
        assert (left[seq * FRAME : (seq + 1) * FRAME] == seq + 1).all()
    assert not left[100 * FRAME :].any()
    agent_start = 500 * RATE // 1000
    assert not right[:agent_start].any()
    for seq in range(30):
        at = agent_start + seq * FRAME
        assert (right[at : at + FRAME] == -(seq + 1)).all()
    assert not right[agent_start + 30 * FRAME :].any()

    counted = {key: _frames_counted(*key) - value for key, value in before.items()}
    assert counted[("in", "placed")] == 100
    assert counted[("out", "placed")] == 30
    assert counted[("in", "invalid")] == 2
    assert counted[("out", "invalid")] == 1
    await asyncio.sleep(0.3)
    assert len(rig.ready) == 1  # announced once


async def test_stopping_mid_call_leaves_a_valid_recording_and_announces_it(rig: _Rig) -> None:
    call_id = new_id()
    await _claimed(rig, call_id)
    before = _counts(("in", "placed"))
    for seq in range(50):  # 1 s of caller audio, then the instance stops
        await _frame(rig.nc, subjects.audio_in(call_id), seq, seq * 20, 42)
    await rig.nc.flush()
    await _until_counted(before, {("in", "placed"): 50})
    await rig.service.stop()
    await _until(lambda: rig.ready)

    path = rig.dir / TENANT / f"{call_id}.wav"
    params, samples = _read(path)
    assert params.nframes == RATE
    assert (samples[:, 0] == 42).all()
    assert not samples[:, 1].any()
    assert rig.ready[0].data.duration_s == 1.0
    assert rig.ready[0].data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def _node_entered(
    started: CallStarted, at_ms: int, node: str, *, sensitive: bool
) -> FlowNodeEntered:
    """The orchestrator entering ``node`` ``at_ms`` after the media stream opened."""
    return FlowNodeEntered(
        tenant_id=TENANT, call_id=started.call_id, source="orchestrator/1",
        time=started.time + timedelta(milliseconds=at_ms),
        data=FlowNodeEnteredData(flow_id="billing", node_id=node, sensitive_input=sensitive),
    )  # fmt: skip


def _redaction_events(result: str) -> float:
    labels = {"result": result}
    return REGISTRY.get_sample_value("voicebus_recorder_redaction_events_total", labels) or 0.0


async def _until_redaction_events(result: str, more_than: float) -> None:
    await _until(lambda: _redaction_events(result) > more_than)


async def _caller_audio(rig: _Rig, call_id: str, from_ms: int, to_ms: int) -> None:
    """Non-silent caller audio over ``[from_ms, to_ms)``, until the recorder placed it."""
    before = _counts(("in", "placed"))
    for ts_ms in range(from_ms, to_ms, 20):
        await _frame(rig.nc, subjects.audio_in(call_id), ts_ms // 20, ts_ms, 1000)
    await rig.nc.flush()
    await _until_counted(before, {("in", "placed"): (to_ms - from_ms) // 20})


async def _end_and_read(rig: _Rig, call_id: str, duration_s: float) -> NDArray[np.int16]:
    """End the call; the recording's caller channel once it is announced."""
    ended = CallEnded(
        tenant_id=TENANT, call_id=call_id, source="test/1",
        data=CallEndedData(reason=EndReason.CALLER_HANGUP, duration_s=duration_s),
    )  # fmt: skip
    await publish_event(rig.service.broker, ended)
    await _until(lambda: any(r.call_id == call_id for r in rig.ready))
    [ready] = [r for r in rig.ready if r.call_id == call_id]
    assert ready.data.redacted
    _params, samples = _read(rig.dir / ready.data.uri.removeprefix("file:"))
    return samples[:, 0]


def _at(ms: int) -> int:
    return ms * RATE // 1000


async def test_the_caller_is_silent_while_a_sensitive_node_collects_digits(rig: _Rig) -> None:
    call_id = new_id()
    started = _started(call_id)
    await publish_event(rig.service.broker, started)
    for subject in (subjects.audio_in(call_id),
                    subjects.evt_filter(TENANT, call_id, "flow.node_entered")):  # fmt: skip
        await _wait_for_subscriber(rig.monitor_url, subject)
    opened, left = _redaction_events("opened"), _redaction_events("other")
    # The PIN node is entered at 1 s; its event comes after the caller's audio up to 1.5 s.
    await _caller_audio(rig, call_id, 0, 1500)
    await publish_event(rig.service.broker, _node_entered(started, 1000, "pin", sensitive=True))
    await _until_redaction_events("opened", opened)
    await _caller_audio(rig, call_id, 1500, 3000)
    await publish_event(rig.service.broker, _node_entered(started, 2000, "next", sensitive=False))
    await _until_redaction_events("other", left)

    left_channel = await _end_and_read(rig, call_id, 3.0)
    margin = 300  # the recorder's default margin on each side
    assert (left_channel[: _at(1000 - margin)] == 1000).all()
    assert not left_channel[_at(1000 - margin) : _at(2000 + margin)].any()
    assert (left_channel[_at(2000 + margin) : _at(3000)] == 1000).all()


async def test_a_span_that_began_before_the_claim_is_read_back(rig: _Rig) -> None:
    call_id = new_id()
    started = _started(call_id)
    # The node was entered before this instance claimed the call (a takeover, say).
    entered = _node_entered(started, 500, "pin", sensitive=True)
    await publish_event(rig.service.broker, entered)
    opened = _redaction_events("opened")
    await publish_event(rig.service.broker, started)
    await _until_redaction_events("opened", opened)
    await _wait_for_subscriber(rig.monitor_url, subjects.audio_in(call_id))
    await _caller_audio(rig, call_id, 0, 1500)

    left_channel = await _end_and_read(rig, call_id, 1.5)
    assert (left_channel[: _at(200)] == 1000).all()
    assert not left_channel[_at(200) :].any()  # the call ended in the node
