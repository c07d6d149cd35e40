"""Audit the locked Python dependencies for known vulnerabilities (pip-audit over uv.lock).

Run by ``make audit-deps`` (part of ``make test``). Exit status:

- 0: every locked dependency was checked and none has a known vulnerability that
  is not on the allow-list; or the vulnerability database could not be reached
  and ``VB_DEP_AUDIT_REQUIRED`` is not set: then a SKIPPED line says why, loudly;
- 1: a vulnerability that is not allowed; the database could not be reached (or
  answered for only some dependencies) while ``VB_DEP_AUDIT_REQUIRED=1``; or the
  allow-list is malformed.

The allow-list, ``security/pip-audit-allow.txt``, holds one accepted advisory per
line: its id, the package, and the reason it is accepted (required), e.g.
``GHSA-xxxx-xxxx-xxxx  somepkg  only reachable through the X API, which we never call``.

``VB_DEP_AUDIT_SERVICE`` picks pip-audit's database: ``pypi`` (default; PyPI's JSON API
per release) or ``osv`` (osv.dev).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOW = ROOT / "security" / "pip-audit-allow.txt"
BIN = Path(sys.executable).parent


def _uv() -> list[str]:
    """uv as the Makefile found it (``UV``), else on PATH."""
    return shlex.split(os.environ.get("UV", "")) or [shutil.which("uv") or "uv"]


def allowed() -> dict[str, str]:
    """Advisory id → reason, from the allow-list; exits on a line without a reason."""
    out: dict[str, str] = {}
    for number, line in enumerate(ALLOW.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split(None, 2)
        if len(parts) < 3:
            sys.exit(f"{ALLOW.relative_to(ROOT)}:{number}: give the advisory id, the package "
                     "and the reason it is accepted")  # fmt: skip
        out[parts[0]] = parts[2]
    return out


def main() -> int:
    """Export the lock, run pip-audit, judge its report."""
    required = os.environ.get("VB_DEP_AUDIT_REQUIRED", "") not in ("", "0", "false")
    service = os.environ.get("VB_DEP_AUDIT_SERVICE", "pypi")
    accepted = allowed()
    with tempfile.TemporaryDirectory(prefix="vb-audit-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        report = Path(tmp) / "report.json"
        subprocess.run(  # noqa: S603 - the project's own commands, fixed arguments
            [*_uv(), "export", "--frozen", "--quiet", "--format", "requirements-txt",
             "--all-packages", "--all-groups", "--all-extras", "--no-emit-workspace",
             "-o", str(requirements)],
            cwd=ROOT, check=True,
        )  # fmt: skip
        command = [str(BIN / "pip-audit"), "-r", str(requirements), "--disable-pip",
                   "-s", service, "--progress-spinner", "off", "--timeout", "20",
                   "-f", "json", "-o", str(report)]  # fmt: skip
        for advisory in accepted:
            command += ["--ignore-vuln", advisory]
        run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if not report.exists():
            reason = (run.stderr.strip().splitlines() or ["no report"])[-1]
            return unreachable(required, service, f"pip-audit failed: {reason[:300]}")
        dependencies = json.loads(report.read_text())["dependencies"]
    return verdict(dependencies, service=service, required=required, accepted=len(accepted))


def verdict(dependencies: list[dict], *, service: str, required: bool, accepted: int) -> int:
    """Judge pip-audit's JSON ``dependencies``: the exit status (see the module docstring)."""
    skipped = [d for d in dependencies if d.get("skip_reason")]
    found = [(d["name"], d["version"], v["id"]) for d in dependencies for v in d.get("vulns", [])]
    checked = len(dependencies) - len(skipped)
    for name, version, advisory in found:
        print(f"VULNERABLE: {name} {version}: {advisory} (not on {ALLOW.relative_to(ROOT)})")
    if found:
        return 1
    if skipped:
        why = skipped[0]["skip_reason"]
        return unreachable(
            required, service, f"{len(skipped)} of {len(dependencies)} dependencies could not be "
            f"checked (first: {why})",
        )  # fmt: skip
    print(f"dependency audit ({service}): {checked} locked dependencies, no known "
          f"vulnerability ({accepted} accepted on the allow-list)")  # fmt: skip
    return 0


def unreachable(required: bool, service: str, reason: str) -> int:
    """The database could not answer: fail when the audit is required, else skip loudly."""
    if required:
        print(f"FAILED: dependency audit ({service}) could not run: {reason}")
        return 1
    print("=" * 78)
    print(f"SKIPPED: dependency audit ({service}): the vulnerability database cannot be "
          f"reached from here. {reason}. Set VB_DEP_AUDIT_REQUIRED=1 where it can (CI) to "
          "make this a failure.")  # fmt: skip
    print("=" * 78)
    return 0


if __name__ == "__main__":
    sys.exit(main())
