"""A recording survives its recorder's SIGKILL: one file, one ``recording.ready``.

Two recorder processes on a private NATS. The test plays the gateway: it holds
the call's ``gateway.<call>`` lease (so the call is live), publishes
``call.started``, streams both sides' audio frames and finally ``call.ended``.
The recorder owning the call is killed with SIGKILL mid-call:

- the call goes on: the other recorder takes it over and continues the same
  file; the audio before the kill (as far as it reached the disk) and after the
  takeover is there, the gap between is silence;
- the call ends before anyone took it over: the recorder that hears the end
  finishes the dead one's file.

Either way the call has one WAV of its whole length and exactly one
``recording.ready``, whose hash is the file's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import urllib.request
import wave
from pathlib import Path

import numpy as np
import pytest
from nats.aio.client import Client

from voicebus.contracts import streams, subjects
from voicebus.contracts.audio import encode_headers
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Envelope,
    RecordingReady,
)
from voicebus.contracts.ids import new_id

from .conftest import LEASE_TTL_S, Cluster, events_of

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(240)]

RATE = 8000
FRAME = 160  # 20 ms
TENANT = "acme"


async def _publish(nc: Client, event: Envelope) -> None:
    await nc.jetstream().publish(event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id})


class _Gateway:
    """Holds a call's gateway lease, as a gateway does while the media stream is up."""

    def __init__(self, nc: Client, call_id: str) -> None:
        self._nc = nc
        self._key = streams.owner_key("gateway", call_id)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Gateway:
        kv = await self._nc.jetstream().key_value(streams.CALL_OWNERS.bucket)
        revision = await kv.create(self._key, b"gw-test")

        async def renew() -> None:
            nonlocal revision
            while True:
                await asyncio.sleep(LEASE_TTL_S / 3)
                revision = await kv.update(self._key, b"gw-test", last=revision)

        self._task = asyncio.create_task(renew())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        kv = await self._nc.jetstream().key_value(streams.CALL_OWNERS.bucket)
        await kv.delete(self._key)


def _subscribers(monitor_url: str, subject: str) -> int:
    with urllib.request.urlopen(f"{monitor_url}/subsz?subs=1&test={subject}", timeout=5) as r:  # noqa: S310
        return int(json.load(r)["total"])


async def _subscribed(cluster: Cluster, call_id: str) -> None:
    async with asyncio.timeout(30):
        while not await asyncio.to_thread(
            _subscribers, cluster.nats.monitor_url, subjects.audio_in(call_id)
        ):
            await asyncio.sleep(0.05)


async def _speak(nc: Client, call_id: str, from_s: int, to_s: int) -> None:
    """Both sides, every 20 ms from ``from_s`` to ``to_s``: each second at its own level.

    Four times faster than real time: the two sides arrive on two subscriptions, and
    one may not run seconds ahead of the other (as it cannot in a real call), or the
    recorder's reorder window would have written a second before its other side came.
    """
    for n in range(from_s * 50, to_s * 50):
        if n % 10 == 0:
            await asyncio.sleep(0.05)
        ts = n * 20
        level = ts // 1000 + 1
        for subject, value in ((subjects.audio_in(call_id), level),
                               (subjects.audio_out(call_id), -level)):  # fmt: skip
            pcm = np.full(FRAME, value, dtype="<i2").tobytes()
            await nc.publish(subject, pcm, headers=encode_headers(RATE, n, ts))
    await nc.flush()


def _started(call_id: str) -> CallStarted:
    data = CallStartedData(direction="inbound", provider="twilio", agent_id="demo",
                           gateway_instance="gw-test")  # fmt: skip
    return CallStarted(tenant_id=TENANT, call_id=call_id, source="gateway/gw-test", data=data)


def _ended(call_id: str, duration_s: float) -> CallEnded:
    return CallEnded(tenant_id=TENANT, call_id=call_id, source="gateway/gw-test",
                     data=CallEndedData(reason="caller_hangup", duration_s=duration_s))  # fmt: skip


async def _ready(nc: Client, call_id: str, timeout: float = 60.0) -> list[RecordingReady]:
    async with asyncio.timeout(timeout):
        while True:
            ready = [e for e in await events_of(nc, call_id) if isinstance(e, RecordingReady)]
            if ready:
                break
            await asyncio.sleep(0.3)
    await asyncio.sleep(2.0)  # a second announcement would be stored by now
    return [e for e in await events_of(nc, call_id) if isinstance(e, RecordingReady)]


def _caller(path: Path) -> np.ndarray:
    with wave.open(str(path)) as reader:
        assert (reader.getnchannels(), reader.getframerate()) == (2, RATE)
        frames = reader.readframes(reader.getnframes())
    return np.frombuffer(frames, dtype="<i2").reshape(-1, 2)


async def test_the_successor_continues_the_file_and_announces_once(cluster: Cluster) -> None:
    await cluster.ensure({"recorder": 2})
    call_id = new_id()
    async with cluster.client() as nc, _Gateway(nc, call_id):
        await _publish(nc, _started(call_id))
        owner = await cluster.wait_owner(nc, "recorder", call_id, timeout=30)
        await _subscribed(cluster, call_id)
        await _speak(nc, call_id, 0, 12)  # 12 s: more than the 5 s reorder window
        path = cluster.data_dir / "recordings" / TENANT / f"{call_id}.wav"
        async with asyncio.timeout(30):  # until audio reached the file
            while not path.exists() or path.stat().st_size < 44 + 4 * RATE * 4:
                await asyncio.sleep(0.1)
        cluster.kill(cluster.by_instance(owner))
        on_disk = (path.stat().st_size - 44) // 4
        survivor = await cluster.wait_owner(nc, "recorder", call_id, not_=owner,
                                            timeout=6 * LEASE_TTL_S)  # fmt: skip
        await _subscribed(cluster, call_id)
        await _speak(nc, call_id, 25, 30)
        await _publish(nc, _ended(call_id, 30.0))
        ready = await _ready(nc, call_id)
    assert survivor != owner
    assert len(ready) == 1, ready
    files = sorted(p.name for p in path.parent.glob(f"{call_id}*"))
    assert files == [f"{call_id}.wav"]  # one file, no marker left
    data = path.read_bytes()
    assert ready[0].data.sha256 == hashlib.sha256(data).hexdigest()
    assert ready[0].data.duration_s == 30.0
    samples = _caller(path)
    assert len(samples) == 30 * RATE
    left, right = samples[:, 0], samples[:, 1]
    for second in range(on_disk // RATE):  # before the kill, as far as it reached the disk
        block = slice(second * RATE, (second + 1) * RATE)
        assert (left[block] == second + 1).all(), second
        assert (right[block] == -(second + 1)).all(), second
    assert not left[on_disk : 25 * RATE].any()  # the dead recorder's memory and the gap
    for second in range(25, 30):  # after the takeover
        assert (left[second * RATE : (second + 1) * RATE] == second + 1).all(), second
    print(f"\nrecorder: {on_disk / RATE:.1f} s on disk at SIGKILL; {survivor} continued the file")


async def test_a_call_ending_before_the_takeover_is_finished_by_who_hears_it(
    cluster: Cluster,
) -> None:
    await cluster.ensure({"recorder": 2})
    call_id = new_id()
    async with cluster.client() as nc:
        async with _Gateway(nc, call_id):
            await _publish(nc, _started(call_id))
            owner = await cluster.wait_owner(nc, "recorder", call_id, timeout=30)
            await _subscribed(cluster, call_id)
            await _speak(nc, call_id, 0, 10)
            path = cluster.data_dir / "recordings" / TENANT / f"{call_id}.wav"
            async with asyncio.timeout(30):
                while not path.exists() or path.stat().st_size < 44 + 3 * RATE * 4:
                    await asyncio.sleep(0.1)
            cluster.kill(cluster.by_instance(owner))
        # The caller hangs up at once: nobody has taken the call over yet.
        await _publish(nc, _ended(call_id, 10.0))
        ready = await _ready(nc, call_id)
    assert len(ready) == 1, ready
    assert sorted(p.name for p in path.parent.glob(f"{call_id}*")) == [f"{call_id}.wav"]
    assert ready[0].data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    samples = _caller(path)
    assert len(samples) == 10 * RATE
    assert (samples[:RATE, 0] == 1).all()
