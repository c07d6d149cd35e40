"""The benchmark machinery: percentiles, ratios, reports, stamped audio, the registry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from voicebus.devkit.bench import registry
from voicebus.devkit.bench.report import (
    Curve,
    Report,
    Series,
    markdown,
    percentiles,
    ratio,
    write,
)
from voicebus.devkit.bench.stamps import pcm_frame, read_pcm, read_ulaw, ulaw_frame
from voicebus.devkit.bench.wsclient import client_frame
from voicebus.runtime.codecs import pcm16_to_ulaw

pytestmark = pytest.mark.unit


def test_percentiles_of_a_known_distribution() -> None:
    values = [float(v) for v in range(1, 1001)]
    pct = percentiles(values)
    assert pct["p50"] == pytest.approx(500.5)
    assert pct["p99"] == pytest.approx(990.01)
    assert pct["p99.9"] == pytest.approx(999.001)


def test_percentiles_of_nothing_are_none() -> None:
    assert percentiles([]) == {"p50": None, "p99": None, "p99.9": None}


def test_ratio_needs_both_figures() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(1.0, 0.0) is None


def _report() -> Report:
    return Report(
        name="demo-bench",
        title="a demonstration",
        columns=["path", "p99 ms"],
        rows=[{"path": "baseline", "p99 ms": 1.5}, {"path": "voicebus", "p99 ms": None}],
        summary={"ratio": 2.0, "by calls": {100: 1.25}},
        notes=["a note"],
        series=[Series("voicebus", [1.0, 2.0, 3.0])],
        curves=[Curve("p99", [1.0, 2.0], [3.0, 4.0], "calls", "ms", limit=20.0)],
    ).finish()


def test_markdown_has_summary_table_and_notes() -> None:
    text = markdown(_report())
    assert "| path | p99 ms |" in text
    assert "| baseline | 1.5 |" in text
    assert "| voicebus | – |" in text
    assert "- **ratio**: 2" in text
    assert "100 1.25" in text
    assert "- a note" in text
    assert "load average at start" in text


def test_write_makes_json_markdown_and_png(tmp_path: Path) -> None:
    paths = write(_report(), tmp_path / "results")
    assert [p.name for p in paths] == ["demo-bench.json", "demo-bench.md", "demo-bench.png"]
    data = json.loads(paths[0].read_text())
    assert data["series"][0]["count"] == 3
    assert data["series"][0]["p50"] == 2.0
    assert data["environment"]["cpus"] >= 1
    assert len(data["environment"]["load_average_at_start"]) == 3
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stamps_survive_the_gateways_codecs() -> None:
    now = time.monotonic_ns()
    assert read_ulaw(ulaw_frame(now)) == now
    assert read_pcm(pcm_frame(now)) == now
    # Agent audio goes out re-encoded as μ-law: the stamp must survive that too.
    assert read_ulaw(pcm16_to_ulaw(pcm_frame(now))) == now
    assert read_pcm(bytes(320)) is None


def test_client_frames_are_masked_with_a_zero_key() -> None:
    frame = client_frame(b"x" * 200)
    assert frame[0] == 0x81
    assert frame[1] == 0x80 | 126
    assert frame[2:4] == (200).to_bytes(2, "big")
    assert frame[4:8] == b"\0\0\0\0"
    assert frame[8:] == b"x" * 200


def test_registry_refuses_a_second_benchmark_of_the_same_name() -> None:
    async def one(_options: registry.BenchOptions) -> Report:
        return _report()

    async def two(_options: registry.BenchOptions) -> Report:
        return _report()

    registry.register("test-only")(one)
    try:
        with pytest.raises(ValueError, match="already registered"):
            registry.register("test-only")(two)
    finally:
        registry.BENCHMARKS.pop("test-only")


def test_every_listed_module_registers_its_benchmark() -> None:
    names = set(registry.load())
    expected = {"bus-latency", "gateway-capacity", "media-density", "turn-latency"}
    assert expected | {"audit-ingest"} <= names


def test_word_error_rate() -> None:
    from voicebus.devkit.bench.stt_latency import wer

    assert wer("Hi there, where is my order?", "hi there where is my order") == 0
    assert wer("a b c", "a x c") == pytest.approx(1 / 3)
    assert wer("a b c", "") == 1
    assert wer("a b", "a b c d") == 1
