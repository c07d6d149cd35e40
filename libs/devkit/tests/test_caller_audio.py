"""The simulated caller's audio helpers: frames, WAV files, resampling, levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicebus.devkit.caller.audio import (
    FRAME_BYTES,
    as_array,
    first_audible,
    frames,
    interleave,
    last_audible,
    read_wav,
    silence,
    speechlike,
    tone,
    write_wav,
)
from voicebus.devkit.caller.voices import ToneVoice, voice

pytestmark = pytest.mark.unit


def test_frames_are_20_ms_and_the_last_is_padded() -> None:
    parts = frames(tone(50))
    assert [len(p) for p in parts] == [FRAME_BYTES] * 3
    assert parts[-1][-20:] == bytes(20)
    with pytest.raises(ValueError, match="even"):
        frames(b"\x00")


def test_audible_bounds() -> None:
    pcm = silence(100) + tone(200) + silence(100)
    first, last = first_audible(pcm), last_audible(pcm)
    assert first is not None
    assert last is not None
    assert 800 <= first < 900
    assert 2300 < last <= 2400
    assert last_audible(silence(100)) is None
    assert first_audible(pcm, start=2401) is None


def test_wav_round_trip_resamples_and_mixes_down(tmp_path: Path) -> None:
    stereo16k = interleave(_tone16k(), _tone16k())
    path = tmp_path / "line.wav"
    write_wav(path, stereo16k, rate=16000, channels=2)
    pcm = read_wav(path)
    assert abs(len(pcm) // 2 - 4000) <= 2  # 0.5 s at 8 kHz
    assert np.abs(as_array(pcm)).max() > 5000


def test_read_wav_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"RIFF nonsense")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        read_wav(path)


def test_speechlike_follows_the_text() -> None:
    short, long = speechlike("Hi"), speechlike("Hi, where is my order 1234 please?")
    assert len(long) > 3 * len(short)
    assert last_audible(short) is not None


async def test_tone_voice_streams_at_the_requested_rate() -> None:
    chunks = [c async for c in ToneVoice().synthesize("hello there", 16000)]
    eight = [c async for c in voice("tones").synthesize("hello there", 8000)]
    assert abs(len(b"".join(chunks)) - 2 * len(b"".join(eight))) <= 4


def _tone16k() -> bytes:
    t = np.arange(8000) / 16000
    return (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes()
