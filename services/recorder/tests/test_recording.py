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


def test_a_recording_left_unfinished_is_continued_in_the_same_file(tmp_path: Path) -> None:
    """What a recorder killed mid-call leaves: a valid file up to what it wrote, a marker,
    maybe half a sample frame. The successor continues the timeline in the same file."""
    first = Recording.open(tmp_path, "acme", "c9", 8000, window_ms=1000, max_jump_ms=60_000)
    assert first.resumed_at == 0
    for seq in range(200):  # 4 s of caller audio at level 7
        first.add(Channel.CALLER, AudioFrame(np.full(160, 7, dtype="<i2").tobytes(), 8000,
                                             seq=seq, ts_ms=seq * 20))  # fmt: skip
    first._file.flush()  # what the kernel holds when the process dies
    with first.path.open("ab") as torn:
        torn.write(b"\x01\x02\x03")  # a write cut short
    written = (first.path.stat().st_size - 44 - 3) // 4
    assert 0 < written < 4 * 8000  # the reorder window was still in memory
    assert (tmp_path / "acme" / "c9.wav.open").exists()

    second = Recording.open(tmp_path, "acme", "c9", 8000, window_ms=1000, max_jump_ms=60_000)
    assert second.path == first.path
    assert second.resumed_at == written
    late = second.add(Channel.CALLER, AudioFrame(b"\x05\x00" * 160, 8000, seq=0, ts_ms=0))
    assert late is Placement.LATE  # before the resume point: final already
    for seq in range(50):  # the caller again, at 6 s, level 9
        second.add(Channel.CALLER, AudioFrame(np.full(160, 9, dtype="<i2").tobytes(), 8000,
                                              seq=seq, ts_ms=6000 + seq * 20))  # fmt: skip
    info = second.finish(min_duration_s=8.0)
    assert info.frames == 8 * 8000
    assert not (tmp_path / "acme" / "c9.wav.open").exists()
    with wave.open(str(info.path)) as reader:
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    left = samples.reshape(-1, 2)[:, 0]
    assert (left[:written] == 7).all()
    assert not left[written : 6 * 8000].any()  # the gap: silence
    assert (left[6 * 8000 : 7 * 8000] == 9).all()
    # Finished: a later recording of the call gets a file of its own.
    third = Recording.open(tmp_path, "acme", "c9", 8000, window_ms=1000, max_jump_ms=60_000)
    assert third.path.name == "c9-1.wav"
    third.discard()
    assert not third.path.exists()


def test_an_unfinished_file_of_another_rate_is_left_alone(tmp_path: Path) -> None:
    first = Recording.open(tmp_path, "acme", "c8", 16000, window_ms=1000, max_jump_ms=60_000)
    first._file.close()
    second = Recording.open(tmp_path, "acme", "c8", 8000, window_ms=1000, max_jump_ms=60_000)
    assert second.path.name == "c8-1.wav"
    assert second.resumed_at == 0
    second.finish()
