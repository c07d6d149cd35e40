"""Audio helpers of the simulated caller: PCM16LE mono at 8 kHz, 20 ms frames.

A phone line carries 8 kHz μ-law; the caller works in PCM16LE and encodes each
frame with the project's G.711 codec just before sending it.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # soxr ships no type marker

SAMPLE_RATE: Final = 8000
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES: Final = FRAME_SAMPLES * 2
AUDIBLE: Final = 64
"""Peak level (of 32767) above which a sample counts as sound: ~-54 dBFS, far above the
μ-law quantization noise of digital silence and below any speech."""


def ms_to_samples(ms: float, rate: int = SAMPLE_RATE) -> int:
    """Samples in ``ms`` milliseconds."""
    return round(ms * rate / 1000)


def samples_to_ms(samples: int, rate: int = SAMPLE_RATE) -> float:
    """Milliseconds of ``samples`` samples."""
    return samples * 1000 / rate


def as_array(pcm: bytes) -> npt.NDArray[np.int16]:
    """PCM16LE bytes as int16 samples (a view, no copy)."""
    return np.frombuffer(pcm, dtype="<i2")


def silence(ms: float) -> bytes:
    """Digital silence."""
    return bytes(2 * ms_to_samples(ms))


def resample(pcm: bytes, rate_in: int, rate_out: int = SAMPLE_RATE) -> bytes:
    """Resample PCM16LE mono with soxr (high quality)."""
    if rate_in == rate_out or not pcm:
        return pcm
    out = soxr.resample(as_array(pcm), rate_in, rate_out)
    return np.asarray(out, dtype="<i2").tobytes()


def float_to_pcm16(samples: npt.ArrayLike) -> bytes:
    """Float samples in [-1, 1] to PCM16LE, clipped."""
    data = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    return (data * 32767).astype("<i2").tobytes()


def frames(pcm: bytes) -> list[bytes]:
    """Split into 20 ms frames; the last one is padded with silence."""
    if len(pcm) % 2:
        raise ValueError("PCM16 audio has an even number of bytes")
    remainder = len(pcm) % FRAME_BYTES
    if remainder:
        pcm += bytes(FRAME_BYTES - remainder)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def first_audible(pcm: bytes, start: int = 0, threshold: int = AUDIBLE) -> int | None:
    """Index of the first sample at or after ``start`` louder than ``threshold``."""
    samples = as_array(pcm)[start:]
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    return int(loud[0]) + start if loud.size else None


def last_audible(pcm: bytes, threshold: int = AUDIBLE) -> int | None:
    """Index of the last sample louder than ``threshold``."""
    loud = np.flatnonzero(np.abs(as_array(pcm).astype(np.int32)) > threshold)
    return int(loud[-1]) if loud.size else None


def read_wav(path: Path, rate: int = SAMPLE_RATE) -> bytes:
    """A PCM WAV file (8, 16 or 32-bit, any rate, any channels) as PCM16LE mono at ``rate``.

    Raises:
        ValueError: not a PCM WAV file this function can read.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            width = wav.getsampwidth()
            channels = wav.getnchannels()
            rate_in = wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as err:
        raise ValueError(f"{path}: not a PCM WAV file ({err})") from None
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128) / 128
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648
    else:
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported")
    mono = data.reshape(-1, channels).mean(axis=1)
    return resample(float_to_pcm16(mono), rate_in, rate)


def write_wav(path: Path, pcm: bytes, rate: int = SAMPLE_RATE, channels: int = 1) -> None:
    """Write PCM16LE (interleaved when ``channels`` > 1) as a WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)


def interleave(left: bytes, right: bytes) -> bytes:
    """Two mono PCM16LE tracks as one stereo track; the shorter is padded with silence."""
    a, b = as_array(left), as_array(right)
    n = max(a.size, b.size)
    out = np.zeros((n, 2), dtype="<i2")
    out[: a.size, 0] = a
    out[: b.size, 1] = b
    return out.tobytes()


def tone(ms: float, frequency: float = 440.0, level: float = 0.3) -> bytes:
    """A sine tone with 10 ms fades, so it starts and ends without clicks."""
    n = ms_to_samples(ms)
    t = np.arange(n) / SAMPLE_RATE
    wave_ = level * np.sin(2 * math.pi * frequency * t)
    fade = min(ms_to_samples(10), n // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave_[:fade] *= ramp
        wave_[n - fade :] *= ramp[::-1]
    return float_to_pcm16(wave_)


def speechlike(text: str) -> bytes:
    """Tone bursts shaped like speaking ``text``: one ~200 ms syllable per vowel group.

    A stand-in voice for tests and machines without a TTS engine: its length and
    rhythm follow the text, so it exercises turn-taking, not speech recognition.
    """
    words = text.split() or ["..."]
    parts: list[bytes] = []
    for i, word in enumerate(words):
        syllables = max(1, _syllables(word))
        for j in range(syllables):
            parts.append(tone(180, 180.0 + 40 * ((i + j) % 4), 0.35))
            parts.append(silence(40))
        parts.append(silence(80))
    return b"".join(parts)


def _syllables(word: str) -> int:
    groups, previous = 0, False
    for char in word.lower():
        vowel = char in "aeiouy"
        groups += vowel and not previous
        previous = vowel
    return groups
