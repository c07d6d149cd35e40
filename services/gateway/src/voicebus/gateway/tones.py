"""In-band DTMF: keypad tones as PCM16 audio (pure).

Used when a provider cannot send DTMF through its API without ending the
media stream: the tones are played to the far end like agent speech. The
levels and timings follow ITU-T Q.23/Q.24 (two sine tones, ≥40 ms each with
≥40 ms of silence between digits); 'w' waits half a second.
"""

from __future__ import annotations

from typing import Final

import numpy as np

_ROWS: Final = ((697, "123A"), (770, "456B"), (852, "789C"), (941, "*0#D"))
_COLUMNS: Final = ((1209, "147*"), (1336, "2580"), (1477, "369#"), (1633, "ABCD"))
_LOW: Final = {key: hz for hz, keys in _ROWS for key in keys}
_HIGH: Final = {key: hz for hz, keys in _COLUMNS for key in keys}
TONE_MS: Final = 100
GAP_MS: Final = 80
WAIT_MS: Final = 500
_AMPLITUDE: Final = 0.35 * 32767  # per tone: the pair stays well below clipping


def dtmf_pcm(digits: str, sample_rate: int) -> bytes:
    """PCM16LE mono audio pressing ``digits`` (0-9, *, #, A-D; 'w' is a pause).

    Raises:
        ValueError: a character that is not a key or 'w'.
    """
    parts: list[np.ndarray] = []
    gap = np.zeros(sample_rate * GAP_MS // 1000, dtype=np.float64)
    t = np.arange(sample_rate * TONE_MS // 1000) / sample_rate
    for key in digits:
        if key == "w":
            parts.append(np.zeros(sample_rate * WAIT_MS // 1000, dtype=np.float64))
            continue
        if key not in _LOW:
            raise ValueError(f"not a keypad key: {key!r}")
        tone = np.sin(2 * np.pi * _LOW[key] * t) + np.sin(2 * np.pi * _HIGH[key] * t)
        parts.extend((tone * _AMPLITUDE, gap))
    if not parts:
        return b""
    return np.concatenate(parts).astype("<i2").tobytes()
