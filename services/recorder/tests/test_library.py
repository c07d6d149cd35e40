"""Recordings as the REST edge sees them: metadata and bytes, within one tenant."""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from voicebus.contracts.rpc import GetRecording, ReadRecording
from voicebus.recorder.library import Library
from voicebus.runtime.rpc import Conflict, NotFound

pytestmark = pytest.mark.unit


@dataclass
class FakeRecorder:
    """Only what the library asks of the recorder: which calls are still being recorded."""

    live_calls: frozenset[str] = field(default_factory=frozenset)


def write(root: Path, tenant: str, call: str, frames: int = 8000) -> bytes:
    path = root / tenant / f"{call}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes((bytes(range(256)) * (frames * 4 // 256 + 1))[: frames * 4])
    return path.read_bytes()


def library(root: Path, live: frozenset[str] = frozenset()) -> Any:
    return Library(root, FakeRecorder(live))  # type: ignore[arg-type]


def test_metadata_of_a_finished_recording(tmp_path: Path) -> None:
    data = write(tmp_path, "acme", "c1", frames=12000)
    reply = library(tmp_path).meta(GetRecording(tenant_id="acme", call_id="c1"))
    assert reply.ok
    assert reply.recording.duration_s == 1.5
    assert reply.recording.sample_rate == 8000
    assert reply.recording.channels == 2
    assert reply.recording.bytes == len(data)
    assert reply.recording.uri == "file:acme/c1.wav"


def test_another_tenants_recording_is_not_found(tmp_path: Path) -> None:
    write(tmp_path, "acme", "c1")
    lib = library(tmp_path)
    with pytest.raises(NotFound) as meta:
        lib.meta(GetRecording(tenant_id="globex", call_id="c1"))
    assert meta.value.status == 404
    with pytest.raises(NotFound) as read:
        lib.read(ReadRecording(tenant_id="globex", call_id="c1"))
    assert read.value.code == "recording_not_found"


def test_a_live_recording_is_409_and_a_broken_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "acme", "c1")
    with pytest.raises(Conflict) as live:
        library(tmp_path, frozenset({"c1"})).meta(GetRecording(tenant_id="acme", call_id="c1"))
    assert (live.value.status, live.value.code) == (409, "recording_in_progress")
    (tmp_path / "acme" / "c2.wav").write_bytes(b"not a wav")
    with pytest.raises(Conflict) as broken:
        library(tmp_path).meta(GetRecording(tenant_id="acme", call_id="c2"))
    assert broken.value.code == "recording_unreadable"


def test_reading_in_chunks_gives_the_whole_file(tmp_path: Path) -> None:
    data = write(tmp_path, "acme", "c1", frames=20000)
    lib = library(tmp_path)
    parts, offset = [], 0
    while True:
        chunk = lib.read(ReadRecording(tenant_id="acme", call_id="c1", offset=offset, length=7000))
        assert chunk.ok
        assert chunk.total_bytes == len(data)
        if not chunk.data:
            break
        parts.append(chunk.data)
        offset += len(chunk.data)
    assert b"".join(parts) == data
