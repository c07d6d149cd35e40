"""The stereo mixer: frames land at their timestamps, on their channel, in bounded memory."""

from __future__ import annotations

import io
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from voicebus.recorder.errors import RecordingClosedError
from voicebus.recorder.mixer import Channel, Placement, StereoMixer, resample
from voicebus.recorder.wav import WavWriter

pytestmark = pytest.mark.unit

CALLER, AGENT = Channel.CALLER, Channel.AGENT
RATE = 8000
FRAME = 160  # 20 ms at 8 kHz


class _Keep(io.BytesIO):
    def close(self) -> None:
        self.final = self.getvalue()
        super().close()


def _pcm(value: int, samples: int = FRAME) -> bytes:
    return np.full(samples, value, dtype="<i2").tobytes()


def _mixer(**kwargs: int) -> tuple[StereoMixer, WavWriter, _Keep]:
    file = _Keep()
    wav = WavWriter(file, RATE, channels=2)
    return StereoMixer(wav, RATE, **kwargs), wav, file


def _channels(data: bytes) -> tuple[NDArray[np.int16], NDArray[np.int16], wave._wave_params]:
    with wave.open(io.BytesIO(data)) as reader:
        params = reader.getparams()
        samples = np.frombuffer(reader.readframes(params.nframes), dtype="<i2").reshape(-1, 2)
    return samples[:, 0], samples[:, 1], params


def _finish(mixer: StereoMixer, wav: WavWriter, file: _Keep, min_frames: int = 0) -> bytes:
    mixer.finish(min_frames)
    wav.close()
    return file.final


def test_frames_land_at_their_timestamp_on_their_channel_with_silence_elsewhere() -> None:
    mixer, wav, file = _mixer()
    assert mixer.add(CALLER, 0, _pcm(100), RATE) is Placement.PLACED
    assert mixer.add(CALLER, 1000, _pcm(101), RATE) is Placement.PLACED  # 980 ms gap
    assert mixer.add(AGENT, 40, _pcm(-200), RATE) is Placement.PLACED
    left, right, params = _channels(_finish(mixer, wav, file))
    assert (params.nchannels, params.framerate) == (2, RATE)
    assert params.nframes == 8000 + FRAME  # up to the end of the last frame
    assert (left[:FRAME] == 100).all()
    assert (left[FRAME:8000] == 0).all()
    assert (left[8000:] == 101).all()
    assert (right[:320] == 0).all()  # ts 40 ms = sample 320
    assert (right[320:480] == -200).all()
    assert (right[480:] == 0).all()


def test_out_of_order_frames_within_the_window_still_land_in_place() -> None:
    mixer, wav, file = _mixer(window_ms=1000, chunk_ms=200)
    for ts in (800, 20, 0, 400):  # arrival order differs from time order
        assert mixer.add(CALLER, ts, _pcm(ts + 1), RATE) is Placement.PLACED
    left, _right, _ = _channels(_finish(mixer, wav, file))
    for ts in (0, 20, 400, 800):
        start = ts * 8
        assert (left[start : start + FRAME] == ts + 1).all()


def test_frames_older_than_the_window_are_dropped_and_partial_ones_trimmed() -> None:
    mixer, wav, file = _mixer(window_ms=1000, chunk_ms=500)
    for ts in range(0, 3000, 20):
        mixer.add(CALLER, ts, _pcm(7), RATE)
    assert mixer.committed > 0  # the oldest audio is already on disk
    committed_ms = mixer.committed // 8
    assert mixer.add(AGENT, 0, _pcm(-1), RATE) is Placement.LATE
    partly = mixer.add(AGENT, committed_ms - 10, _pcm(-2), RATE)
    assert partly is Placement.PARTLY_LATE
    _left, right, _ = _channels(_finish(mixer, wav, file))
    assert (right[: committed_ms * 8] == 0).all()  # the written part was never rewritten
    assert (right[committed_ms * 8 : committed_ms * 8 + 80] == -2).all()


def test_duplicates_and_overlaps_replace_instead_of_adding_up() -> None:
    mixer, wav, file = _mixer()
    mixer.add(CALLER, 0, _pcm(1000), RATE)
    mixer.add(CALLER, 0, _pcm(1000), RATE)  # redelivered frame
    mixer.add(CALLER, 10, _pcm(5), RATE)  # overlaps the second half
    mixer.add(AGENT, 0, _pcm(-3), RATE)
    left, right, params = _channels(_finish(mixer, wav, file))
    assert params.nframes == 80 + FRAME
    assert (left[:80] == 1000).all()
    assert (left[80:] == 5).all()
    assert (right[:FRAME] == -3).all()  # the other channel is untouched by the overlap


def test_a_frame_at_another_rate_is_resampled_to_the_recordings_rate() -> None:
    mixer, wav, file = _mixer()
    assert mixer.add(AGENT, 100, _pcm(300, samples=320), 16000) is Placement.PLACED
    _left, right, params = _channels(_finish(mixer, wav, file))
    assert params.nframes == 800 + FRAME  # 320 samples at 16 kHz = 160 at 8 kHz
    assert (right[800:] == 300).all()


@pytest.mark.parametrize(("src", "dst", "n_in", "n_out"), [(48000, 8000, 960, 160),
                         (16000, 24000, 320, 480), (24000, 16000, 480, 320)])  # fmt: skip
def test_resample_keeps_duration_and_level(src: int, dst: int, n_in: int, n_out: int) -> None:
    out = resample(np.full(n_in, 1234, dtype=np.int16), src, dst)
    assert out.dtype == np.dtype("<i2")
    assert out.size == n_out
    assert (out == 1234).all()


def test_a_timestamp_far_ahead_is_refused_and_writes_nothing() -> None:
    mixer, wav, file = _mixer(max_jump_ms=10_000)
    mixer.add(CALLER, 0, _pcm(1), RATE)
    assert mixer.add(CALLER, 3_600_000, _pcm(2), RATE) is Placement.TOO_FAR
    _left, _right, params = _channels(_finish(mixer, wav, file))
    assert params.nframes == FRAME


def test_a_gap_longer_than_the_buffer_is_written_as_silence() -> None:
    mixer, wav, file = _mixer(window_ms=1000, chunk_ms=100)
    mixer.add(CALLER, 0, _pcm(1), RATE)
    mixer.add(AGENT, 25_000, _pcm(2), RATE)  # 25 s later: many buffers of silence
    left, right, params = _channels(_finish(mixer, wav, file))
    assert params.nframes == 25_000 * 8 + FRAME
    assert (left[:FRAME] == 1).all()
    assert not left[FRAME:].any()
    assert not right[: 25_000 * 8].any()
    assert (right[25_000 * 8 :] == 2).all()


def test_a_frame_longer_than_the_window_is_placed_whole() -> None:
    mixer, wav, file = _mixer(window_ms=1000, chunk_ms=100)
    six_seconds = np.arange(48000, dtype="<i2")
    assert mixer.add(CALLER, 500, six_seconds.tobytes(), RATE) is Placement.PLACED
    left, _right, _ = _channels(_finish(mixer, wav, file))
    assert (left[4000:] == six_seconds).all()


def test_finish_pads_to_the_calls_duration_and_later_audio_is_refused() -> None:
    mixer, wav, file = _mixer()
    mixer.add(CALLER, 0, _pcm(9), RATE)
    assert mixer.finish(min_frames=3 * RATE) == 3 * RATE
    with pytest.raises(RecordingClosedError):
        mixer.add(CALLER, 20, _pcm(9), RATE)
    wav.close()
    _left, _right, params = _channels(file.final)
    assert params.nframes == 3 * RATE


def test_empty_frames_are_ignored() -> None:
    mixer, _wav, _file = _mixer()
    assert mixer.add(CALLER, 0, b"", RATE) is Placement.EMPTY
    assert mixer.head == 0


def test_ten_minutes_of_audio_stream_to_disk_in_a_small_fixed_buffer(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    with path.open("wb") as file:
        wav = WavWriter(file, RATE, channels=2)
        mixer = StereoMixer(wav, RATE, window_ms=2000, chunk_ms=1000)
        caller, agent = _pcm(11), _pcm(-22)
        tracemalloc.start()
        try:
            for ts in range(0, 600_000, 20):
                mixer.add(CALLER, ts, caller, RATE)
                if (ts // 5000) % 2:  # the agent speaks every other 5 s
                    mixer.add(AGENT, ts, agent, RATE)
                if ts == 300_000:
                    assert wav.data_bytes > 4 * RATE * 295  # already on disk, not held
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        mixer.finish()
        wav.close()
    assert mixer.buffered_bytes == 3 * RATE * 4  # (window + chunk) of stereo PCM16
    assert peak < 1_000_000  # a 10-minute recording is 19 MB; memory stays well under 1 MB
    with wave.open(str(path)) as reader:
        assert reader.getnframes() == 600 * RATE
        reader.setpos(5 * RATE)  # from 5 s to 10 s both speak
        chunk = np.frombuffer(reader.readframes(10), dtype="<i2").reshape(-1, 2)
        assert (chunk[:, 0] == 11).all()
        assert (chunk[:, 1] == -22).all()
        reader.setpos(10 * RATE + 5)  # from 10 s to 15 s the caller only
        chunk = np.frombuffer(reader.readframes(10), dtype="<i2").reshape(-1, 2)
        assert (chunk[:, 0] == 11).all()
        assert (chunk[:, 1] == 0).all()


def test_a_silenced_span_covers_audio_placed_before_and_after_it_was_opened() -> None:
    mixer, wav, file = _mixer(window_ms=1000, chunk_ms=100)
    for seq in range(25):  # 0-500 ms arrive before the span is known
        mixer.add(CALLER, seq * 20, _pcm(7), RATE)
    assert mixer.silence_from(CALLER, 200 * RATE // 1000) == 0  # still in the window
    assert mixer.silence_from(CALLER, 300 * RATE // 1000) == 0  # already open: unchanged
    for seq in range(25, 100):  # 500-2000 ms
        mixer.add(CALLER, seq * 20, _pcm(7), RATE)
        mixer.add(AGENT, seq * 20, _pcm(-3), RATE)
    mixer.silence_until(CALLER, 1400 * RATE // 1000)
    left, right, _params = _channels(_finish(mixer, wav, file))
    at = [ms * RATE // 1000 for ms in (200, 1400, 2000)]
    assert (left[: at[0]] == 7).all()
    assert not left[at[0] : at[1]].any()
    assert (left[at[1] : at[2]] == 7).all()
    assert (right[500 * RATE // 1000 :] == -3).all()  # the agent's channel is kept
    assert mixer.redacted


def test_a_span_opened_after_its_start_was_written_reports_the_written_part() -> None:
    mixer, wav, file = _mixer(window_ms=200, chunk_ms=100)
    for seq in range(50):  # 1 s: all but the last ~300 ms written
        mixer.add(CALLER, seq * 20, _pcm(5), RATE)
    written = mixer.silence_from(CALLER, 0)
    assert written == mixer.committed > 0
    left, _right, _params = _channels(_finish(mixer, wav, file))
    assert (left[:written] == 5).all()
    assert not left[written:].any()
