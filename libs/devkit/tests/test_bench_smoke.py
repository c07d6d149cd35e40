"""``voicebus bench`` end to end, in its smallest configuration (seconds, not figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicebus.devkit.bench.runner import run_named

pytestmark = pytest.mark.integration


async def test_audit_ingest_quick_writes_its_results(tmp_path: Path) -> None:
    lines: list[str] = []
    code = await run_named(["audit-ingest"], tmp_path, quick=True, emit=lines.append)
    assert code == 0, "\n".join(lines)
    result = json.loads((tmp_path / "audit-ingest.json").read_text())
    assert result["summary"]["exactly once"] is True
    assert result["summary"]["rows stored"] == 480
    assert (tmp_path / "audit-ingest.md").read_text().startswith("# audit-ingest")
    assert (tmp_path / "audit-ingest.png").stat().st_size > 0


async def test_an_unknown_benchmark_is_refused(tmp_path: Path) -> None:
    lines: list[str] = []
    assert await run_named(["no-such-bench"], tmp_path, emit=lines.append) == 2
    assert "unknown benchmark" in lines[0]
