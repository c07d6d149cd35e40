"""Recordings on S3-compatible storage, against moto's S3 server (a real HTTP S3 API).

The recorder runs on a real nats-server; a finished recording is uploaded under
``<tenant>/<yyyy>/<mm>/<call>.wav`` and announced by its ``s3://`` URI, and the REST edge's
queries read it back with ranged requests. A store that refuses the upload leaves the
recording in the directory, announced by its file URI: nothing is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import nats
import numpy as np
import pytest
from moto.server import ThreadedMotoServer
from nats.aio.msg import Msg
from prometheus_client import REGISTRY
from pydantic import SecretStr

from voicebus.contracts import subjects
from voicebus.contracts.audio import encode_headers
from voicebus.contracts.erasure import EraseRecordings
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    RecordingReady,
)
from voicebus.contracts.ids import id_time_ms, new_id
from voicebus.contracts.rpc import GetRecording, ReadRecording
from voicebus.devkit.ports import free_port
from voicebus.recorder.app import build
from voicebus.recorder.archive import S3Store, recording_key
from voicebus.recorder.library import StoreLibrary
from voicebus.recorder.settings import RecorderSettings
from voicebus.runtime.publish import publish_event
from voicebus.runtime.rpc import Conflict, NotFound

pytestmark = pytest.mark.integration

RATE = 8000
FRAME = 160
TENANT = "acme"
BUCKET = "voicebus-recordings"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback with the bucket created (moto takes any key)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def _settings(tmp_path: Path, endpoint: str, bucket: str = BUCKET, **kw: Any) -> RecorderSettings:
    return RecorderSettings(
        dir=tmp_path,
        s3_bucket=bucket,
        s3_endpoint_url=endpoint,
        s3_access_key_id="test-key",
        s3_secret_access_key=SecretStr("test-secret"),
        **kw,
    )


def _objects(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    )


def test_keys_are_tenant_year_month_call() -> None:
    call_id = new_id()
    started = datetime.fromtimestamp(id_time_ms(call_id) / 1000, tz=UTC)
    assert recording_key("acme", call_id) == f"acme/{started:%Y/%m}/{call_id}.wav"
    assert recording_key("acme", call_id, f"{call_id}-1.wav", prefix="rec/") == (
        f"rec/acme/{started:%Y/%m}/{call_id}-1.wav"
    )
    assert recording_key("acme", "CA0123") == "acme/undated/CA0123.wav"


async def _until(condition: Callable[[], Any], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def _subscribers(monitor_url: str, subject: str) -> int:
    url = f"{monitor_url}/subsz?subs=1&test={subject}"
    with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310  # the test's own server
        return int(json.load(reply)["total"])


def _placed(direction: str) -> float:
    labels = {"direction": direction, "result": "placed"}
    return REGISTRY.get_sample_value("voicebus_recorder_frames_total", labels) or 0.0


async def _record_a_call(
    embedded_nats_factory: Callable[..., Any], settings: RecorderSettings
) -> tuple[str, RecordingReady]:
    """Run the recorder, record 1 s of caller and agent audio, end the call: its event."""
    server = embedded_nats_factory()
    settings = settings.model_copy(update={"nats_url": server.url, "instance_id": "r1"})
    service, _app = build(settings)
    await service.start()
    nc = await nats.connect(server.url)
    ready: list[RecordingReady] = []

    async def on_ready(msg: Msg) -> None:
        ready.append(RecordingReady.model_validate_json(msg.data))

    try:
        await nc.subscribe(subjects.evt_filter(TENANT, event_type="recording.ready"), cb=on_ready)
        call_id = new_id()
        started = CallStarted(
            tenant_id=TENANT, call_id=call_id, source="test/1",
            data=CallStartedData(direction=Direction.INBOUND, provider="twilio",
                                 agent_id="demo", gateway_instance="gw"),
        )  # fmt: skip
        await publish_event(service.broker, started)
        for subject in (subjects.audio_in(call_id), subjects.audio_out(call_id)):
            async with asyncio.timeout(20):
                while not await asyncio.to_thread(_subscribers, server.monitor_url, subject):
                    await asyncio.sleep(0.05)
        before = {d: _placed(d) for d in ("in", "out")}
        for seq in range(50):
            pcm = np.full(FRAME, seq + 1, dtype="<i2").tobytes()
            await nc.publish(
                subjects.audio_in(call_id), pcm, headers=encode_headers(RATE, seq, seq * 20)
            )
            await nc.publish(
                subjects.audio_out(call_id), pcm, headers=encode_headers(RATE, seq, seq * 20)
            )
        await nc.flush()
        # Until the recorder's own connection has handled them all.
        await _until(lambda: all(_placed(d) - before[d] >= 50 for d in ("in", "out")))
        ended = CallEnded(
            tenant_id=TENANT, call_id=call_id, source="test/1",
            data=CallEndedData(reason=EndReason.CALLER_HANGUP, duration_s=1.0),
        )  # fmt: skip
        await publish_event(service.broker, ended)
        await _until(lambda: ready)
    finally:
        await nc.drain()
        await service.stop()
    return call_id, ready[0]


async def test_a_finished_recording_is_uploaded_and_announced_by_its_key(
    embedded_nats_factory: Callable[..., Any], s3_endpoint: str, tmp_path: Path
) -> None:
    call_id, event = await _record_a_call(embedded_nats_factory, _settings(tmp_path, s3_endpoint))
    key = recording_key(TENANT, call_id)
    assert event.data.uri == f"s3://{BUCKET}/{key}"
    stored = _objects(s3_endpoint).get_object(Bucket=BUCKET, Key=key)
    body = stored["Body"].read()
    assert stored["ContentType"] == "audio/wav"
    assert event.data.bytes == len(body) == 44 + RATE * 4
    assert event.data.sha256 == hashlib.sha256(body).hexdigest()
    assert not (tmp_path / TENANT / f"{call_id}.wav").exists()  # the spool is emptied


async def test_a_refused_upload_keeps_the_recording_in_the_directory(
    embedded_nats_factory: Callable[..., Any], s3_endpoint: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, s3_endpoint, bucket="no-such-bucket")
    call_id, event = await _record_a_call(embedded_nats_factory, settings)
    assert event.data.uri == f"file:{TENANT}/{call_id}.wav"
    path = tmp_path / TENANT / f"{call_id}.wav"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == event.data.sha256


class _NotRecording:
    live_calls: frozenset[str] = frozenset()


async def test_the_edge_queries_read_the_stored_recording(s3_endpoint: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path, s3_endpoint, s3_prefix="rec/")
    store = S3Store(settings)
    call_id = new_id()
    wav = tmp_path / "upload.wav"
    header = bytearray(44)
    header[0:4], header[8:16] = b"RIFF", b"WAVEfmt "
    header[22:24] = (2).to_bytes(2, "little")
    header[24:28] = RATE.to_bytes(4, "little")
    audio = bytes(range(256)) * 250  # 64,000 bytes: 2 s of 8 kHz stereo PCM16
    wav.write_bytes(bytes(header) + audio)
    await store.put(recording_key(TENANT, call_id, prefix="rec/"), wav)
    library = StoreLibrary(tmp_path, _NotRecording(), store, "rec/")  # type: ignore[arg-type]

    reply = await library.meta(GetRecording(tenant_id=TENANT, call_id=call_id))
    assert reply.recording is not None
    assert (reply.recording.channels, reply.recording.sample_rate) == (2, RATE)
    assert reply.recording.duration_s == 2.0
    assert reply.recording.bytes == 44 + len(audio)
    assert reply.recording.uri == f"s3://{BUCKET}/{recording_key(TENANT, call_id, prefix='rec/')}"

    parts, offset = [], 0
    while True:
        chunk = await library.read(
            ReadRecording(tenant_id=TENANT, call_id=call_id, offset=offset, length=9000)
        )
        assert chunk.total_bytes == 44 + len(audio)
        if not chunk.data:
            break
        parts.append(chunk.data)
        offset += len(chunk.data)
    assert b"".join(parts) == bytes(header) + audio

    # Another tenant's lookup names another key: not found, never this tenant's recording.
    with pytest.raises(NotFound):
        await library.meta(GetRecording(tenant_id="globex", call_id=call_id))
    with pytest.raises(NotFound):
        await library.read(ReadRecording(tenant_id="globex", call_id=call_id))
    # A call still being recorded here is 409, whatever the bucket holds.
    live = StoreLibrary(
        tmp_path, type("R", (), {"live_calls": frozenset({call_id})})(), store, "rec/"
    )  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        await live.meta(GetRecording(tenant_id=TENANT, call_id=call_id))

    # Erasure: another tenant's request deletes nothing; this tenant's deletes the object.
    other = await library.erase(EraseRecordings(tenant_id="globex", call_ids=[call_id]))
    assert other.recordings == 0
    assert await store.size(recording_key(TENANT, call_id, prefix="rec/")) is not None
    erased = await library.erase(EraseRecordings(tenant_id=TENANT, call_ids=[call_id]))
    assert erased.recordings == 1
    assert await store.size(recording_key(TENANT, call_id, prefix="rec/")) is None
    with pytest.raises(NotFound):
        await library.meta(GetRecording(tenant_id=TENANT, call_id=call_id))
    again = await library.erase(EraseRecordings(tenant_id=TENANT, call_ids=[call_id]))
    assert again.recordings == 0

    # Retention: objects of calls started before the cut-off go, newer ones and another
    # tenant's stay.
    now = datetime.now(UTC)
    old_call = str(uuid.UUID(int=(int((now - timedelta(days=40)).timestamp() * 1000) << 80)
                             | (0x7 << 76) | (0b10 << 62) | 1))  # fmt: skip
    for tenant, call in ((TENANT, old_call), (TENANT, call_id), ("globex", old_call)):
        await store.put(recording_key(tenant, call, prefix="rec/"), wav)
    assert await library.expire(TENANT, now - timedelta(days=30)) == 1
    assert await store.size(recording_key(TENANT, old_call, prefix="rec/")) is None
    assert await store.size(recording_key(TENANT, call_id, prefix="rec/")) is not None
    assert await store.size(recording_key("globex", old_call, prefix="rec/")) is not None
    assert await library.expire(TENANT, now - timedelta(days=30)) == 0
