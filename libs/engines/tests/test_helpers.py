"""Options, audio helpers and file verification: small pieces every engine relies on."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from voicebus.engines.audio import (
    StreamResampler,
    float_to_pcm16,
    pcm16_to_float,
    resample,
    rms_dbfs,
)
from voicebus.engines.base import EngineError
from voicebus.engines.models import ModelIntegrityError, sha256_file, verify_dir, verify_file
from voicebus.engines.options import OptionReader

pytestmark = pytest.mark.unit


def test_options_are_read_with_defaults_and_bounds() -> None:
    read = OptionReader("demo", {"a": "x", "n": 3, "f": 2, "b": True})
    assert read.text("a", "d") == "x"
    assert read.text("missing", "d") == "d"
    assert read.optional_text("other") is None
    assert read.integer("n", 1, low=1, high=5) == 3
    assert read.number("f", 1.0, low=0, high=5) == 2.0
    assert read.flag("b", False) is True
    read.finish()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n": 9}, "an integer from 1 to 5"),
        ({"n": True}, "an integer"),
        ({"n": 2.5}, "an integer"),
        ({"n": "3"}, "an integer"),
    ],
)
def test_wrong_option_values_name_the_key(options: dict[str, object], message: str) -> None:
    with pytest.raises(EngineError, match=f"demo: option 'n' must be {message}"):
        OptionReader("demo", options).integer("n", 1, low=1, high=5)


def test_unknown_options_are_named() -> None:
    read = OptionReader("demo", {"langauge": "en", "beam_size": 1})
    read.integer("beam_size", 1, low=1, high=5)
    with pytest.raises(EngineError, match="unknown option\\(s\\) langauge; known: beam_size"):
        read.finish()


def test_pcm16_conversions_clip_and_round_trip() -> None:
    samples = np.array([0.0, 0.5, -0.5, 1.5, -1.5], dtype=np.float32)
    pcm = float_to_pcm16(samples)
    assert np.frombuffer(pcm, "<i2").tolist() == [0, 16384, -16384, 32767, -32767]
    assert pcm16_to_float(pcm)[1] == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ValueError, match="even"):
        pcm16_to_float(b"\x00")


def test_loudness() -> None:
    assert rms_dbfs(np.zeros(10, np.float32)) == -math.inf
    assert rms_dbfs(np.zeros(0, np.float32)) == -math.inf
    assert rms_dbfs(np.ones(10, np.float32)) == pytest.approx(0.0)
    assert rms_dbfs(np.full(10, 0.1, np.float32)) == pytest.approx(-20.0, abs=0.01)


def test_streamed_resampling_matches_one_shot() -> None:
    rng = np.random.default_rng(3)
    signal = (0.3 * np.sin(np.arange(24000) * 2 * np.pi * 300 / 24000)).astype(np.float32)
    signal += rng.standard_normal(24000).astype(np.float32) * 0.01
    whole = resample(signal, 24000, 8000)
    stream = StreamResampler(24000, 8000)
    cuts = [0, 4801, 9000, 17333, 24000]
    pieces = [stream.process(signal[a:b], last=(b == 24000)) for a, b in itertools.pairwise(cuts)]
    joined = np.concatenate(pieces)
    assert joined.size == pytest.approx(8000, abs=2)
    n = min(joined.size, whole.size)
    assert float(np.max(np.abs(joined[:n] - whole[:n]))) < 1e-3


def test_same_rate_is_passed_through() -> None:
    samples = np.arange(5, dtype=np.float32)
    assert StreamResampler(8000, 8000).process(samples) is samples
    assert resample(samples, 8000, 8000) is samples


def test_file_verification(tmp_path: Path) -> None:
    good = tmp_path / "weights.bin"
    good.write_bytes(b"model weights")
    digest = sha256_file(good)
    verify_file(good, digest)
    verify_dir(tmp_path, {"weights.bin": digest})
    with pytest.raises(ModelIntegrityError, match=r"weights\.bin has sha256"):
        verify_file(good, "0" * 64)
    with pytest.raises(ModelIntegrityError, match=r"other\.bin is missing"):
        verify_dir(tmp_path, {"other.bin": digest})
    assert issubclass(ModelIntegrityError, EngineError)
