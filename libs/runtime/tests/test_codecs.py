"""μ-law codec: reference values and round trip."""

from __future__ import annotations

import numpy as np
import pytest

from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16

pytestmark = pytest.mark.unit


def test_reference_values() -> None:
    decoded = np.frombuffer(ulaw_to_pcm16(bytes([0x00, 0x80, 0xFF, 0x7F, 0xF0])), "<i2")
    assert decoded.tolist() == [-32124, 32124, 0, 0, 120]
    assert pcm16_to_ulaw(np.array([0, 32767, -32768, 120], "<i2").tobytes()) == bytes(
        [0xFF, 0x80, 0x00, 0xF0]
    )


def test_round_trip_error_is_within_the_quantisation_step() -> None:
    pcm = (np.sin(np.linspace(0, 50, 8000)) * 20000).astype("<i2")
    back = np.frombuffer(ulaw_to_pcm16(pcm16_to_ulaw(pcm.tobytes())), "<i2")
    error = np.abs(back.astype(np.int32) - pcm.astype(np.int32))
    # μ-law keeps ~4 % relative error at worst (coarsest step 1024 near full scale).
    assert np.all(error <= np.maximum(16, np.abs(pcm.astype(np.int32)) // 16))
    assert len(pcm16_to_ulaw(pcm.tobytes())) == len(pcm)
