"""Sample conversions and resampling (soxr) shared by the engines.

The bus carries mono PCM16LE; models want float32 at their own rate (whisper
16 kHz, hibari 24 kHz) and phone calls run at 8 kHz.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # soxr ships no type marker

FloatArray = npt.NDArray[np.float32]

_PCM16_SCALE: Final = 32768.0
_PCM16_MAX: Final = 32767.0


def pcm16_to_float(pcm16: bytes) -> FloatArray:
    """PCM16LE bytes → float32 samples in [-1, 1).

    Raises:
        ValueError: an odd number of bytes is not PCM16.
    """
    if len(pcm16) % 2:
        raise ValueError("PCM16 audio must have an even number of bytes")
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / np.float32(_PCM16_SCALE)


def float_to_pcm16(samples: npt.NDArray[np.floating]) -> bytes:
    """Float samples (clipped to [-1, 1]) → PCM16LE bytes."""
    clipped = np.clip(samples, -1.0, 1.0) * _PCM16_MAX
    pcm: bytes = np.rint(clipped).astype("<i2").tobytes()
    return pcm


def resample(samples: FloatArray, from_rate: int, to_rate: int) -> FloatArray:
    """Resample a whole mono signal (soxr, high quality)."""
    if from_rate == to_rate or samples.size == 0:
        return samples
    out: FloatArray = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return out.astype(np.float32, copy=False)


def rms_dbfs(samples: FloatArray) -> float:
    """Loudness of a signal in dB relative to full scale (-inf for digital silence)."""
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


class StreamResampler:
    """Resamples a mono float signal that arrives in pieces, without clicks between them.

    soxr keeps filter state across calls, so pieces join seamlessly; the output of
    a piece lags its input by the filter delay, which :meth:`process` with
    ``last=True`` flushes.

    Args:
        from_rate: Input sample rate (Hz).
        to_rate: Output sample rate (Hz).
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, samples: FloatArray, *, last: bool = False) -> FloatArray:
        """Resample the next piece; ``last=True`` also flushes what the filter holds."""
        if self._stream is None:
            return samples
        out: FloatArray = self._stream.resample_chunk(samples.astype(np.float32), last=last)
        return out
