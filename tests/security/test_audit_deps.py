"""The dependency audit's verdict: a vulnerability fails, an unreachable database is said aloud."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit_deps.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails_the_audit(capsys: pytest.CaptureFixture[str]) -> None:
    bad = {"name": "bad", "version": "2.0", "vulns": [{"id": "GHSA-aaaa-bbbb-cccc"}]}
    deps = [{"name": "ok", "version": "1.0", "vulns": []}, bad]
    assert _script().verdict(deps, service="pypi", required=False, accepted=0) == 1
    assert "VULNERABLE: bad 2.0: GHSA-aaaa-bbbb-cccc" in capsys.readouterr().out


def test_an_unreachable_database_is_skipped_aloud_or_fails_when_required(
    capsys: pytest.CaptureFixture[str],
) -> None:
    deps = [{"name": "x", "version": "1", "skip_reason": "Dependency not found on PyPI"}]
    audit = _script()
    assert audit.verdict(deps, service="pypi", required=False, accepted=0) == 0
    assert "SKIPPED" in capsys.readouterr().out
    assert audit.verdict(deps, service="pypi", required=True, accepted=0) == 1
    assert "FAILED" in capsys.readouterr().out
    clean = [{"name": "x", "version": "1", "vulns": []}]
    assert audit.verdict(clean, service="pypi", required=True, accepted=2) == 0
    assert "1 locked dependencies, no known vulnerability" in capsys.readouterr().out


def test_every_accepted_advisory_has_a_reason() -> None:
    assert isinstance(_script().allowed(), dict)
