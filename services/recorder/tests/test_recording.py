"""A call's recording file: layout, no overwrite, and the facts recording.ready reports."""

from __future__ import annotations

import errno
import hashlib
import io
import wave
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from voicebus.contracts.audio import AudioFrame
from voicebus.recorder.mixer import Channel, Placement, StereoMixer
from voicebus.recorder.recording import Recording
from voicebus.recorder.wav import WavWriter

pytestmark = pytest.mark.unit


def _create(root: Path, call_id: str = "c1", rate: int = 8000) -> Recording:
    return Recording.create(root, "acme", call_id, rate, window_ms=2000, max_jump_ms=60_000)


def test_a_finished_recording_reports_its_size_hash_and_length(tmp_path: Path) -> None:
    recording = _create(tmp_path, rate=16000)
    assert recording.path == tmp_path / "acme" / "c1.wav"
    pcm = np.full(320, 5, dtype="<i2").tobytes()
    recording.add(Channel.CALLER, AudioFrame(pcm, 16000, seq=0, ts_ms=0))
    recording.add(Channel.AGENT, AudioFrame(pcm, 16000, seq=0, ts_ms=980, utterance_id="u1"))
    info = recording.finish(min_duration_s=1.5)
    data = info.path.read_bytes()
    assert info.uri == "file:acme/c1.wav"
    assert info.bytes == len(data) == 44 + 24000 * 4
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert (info.sample_rate, info.frames, info.duration_s) == (16000, 24000, 1.5)
    with wave.open(str(info.path)) as reader:
        params = reader.getparams()
    assert (params.nchannels, params.framerate, params.nframes) == (2, 16000, 24000)


def test_a_second_recording_of_a_call_never_overwrites_the_first(tmp_path: Path) -> None:
    first = _create(tmp_path)
    first.add(Channel.CALLER, AudioFrame(b"\x01\x00" * 160, 8000, seq=0, ts_ms=0))
    kept = first.finish()
    second = _create(tmp_path)
    assert second.path == tmp_path / "acme" / "c1-1.wav"
    assert second.key.as_posix() == "acme/c1-1.wav"
    second.finish()
    assert hashlib.sha256(kept.path.read_bytes()).hexdigest() == kept.sha256


def test_discard_removes_the_file(tmp_path: Path) -> None:
    recording = _create(tmp_path, call_id="c2")
    recording.discard()
    assert not recording.path.exists()


class _FullDisk(io.BytesIO):
    """Takes the WAV header, then fails like a full disk."""

    def write(self, data: object) -> int:
        if self.tell() >= 44:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)  # type: ignore[arg-type]  # BytesIO accepts any buffer


def test_a_write_failure_drops_the_rest_and_finish_reports_it(tmp_path: Path) -> None:
    file = _FullDisk()
    mixer = StereoMixer(WavWriter(file, 8000, channels=2), 8000, window_ms=1000, chunk_ms=100)
    recording = Recording(tmp_path / "x.wav", PurePosixPath("acme/x.wav"), file, mixer)
    pcm = b"\x01\x00" * 160
    results = [recording.add(Channel.CALLER, AudioFrame(pcm, 8000, seq=i, ts_ms=i * 20))
               for i in range(100)]  # fmt: skip
    assert results[0] is Placement.PLACED
    assert results[-1] is None  # 2 s in: the first write to disk failed
    assert isinstance(recording.error, OSError)
    with pytest.raises(OSError, match="No space left"):
        recording.finish()
    assert file.closed
