"""The alert and recording rules under infra/prometheus pass ``promtool check rules`` and
their unit tests (``promtool test rules``), with Debian's promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "infra" / "prometheus"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: run scripts/install-prometheus.sh")
    return found


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_rules_are_valid() -> None:
    rules = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
    assert rules, "no rule files"
    done = _run("check", "rules", *map(str, rules), cwd=PROMETHEUS_DIR)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass() -> None:
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
    assert tests, "no rule tests"
    done = _run("test", "rules", *(t.name for t in tests), cwd=PROMETHEUS_DIR / "tests")
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_config_is_valid() -> None:
    done = _run("check", "config", "--syntax-only", "prometheus.yml", cwd=PROMETHEUS_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
