"""The benchmark registry: a name → an async function that runs it and returns a report.

A benchmark module registers itself with :func:`register` and is listed in
:data:`MODULES`, which :func:`load` imports (lazily: the CLI stays fast)::

    @register("audit-ingest")
    async def run(options: BenchOptions) -> Report: ...
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from voicebus.devkit.bench.report import Report


@dataclass(frozen=True)
class BenchOptions:
    """How to run a benchmark.

    Attributes:
        out_dir: where ``<name>.json|md|png`` are written.
        work_dir: scratch space for embedded servers' data.
        quick: the smallest configuration (seconds, for smoke tests); the figures
            are not meaningful.
        profile: record a py-spy profile of the process under test, where the
            benchmark supports it (written next to the results).
    """

    out_dir: Path
    work_dir: Path
    quick: bool = False
    profile: bool = False


Benchmark = Callable[[BenchOptions], Awaitable[Report]]
"""Runs one benchmark, baseline included, and returns its report (not yet written)."""

BENCHMARKS: dict[str, Benchmark] = {}
"""Every registered benchmark by name (after :func:`load`)."""

MODULES: Final = (
    "bus_latency",
    "gateway_capacity",
    "media_density",
    "turn_latency",
    "audit_ingest",
    "campaign",
    "stt_latency",
    "failover",
)
"""Modules of ``voicebus.devkit.bench`` that register benchmarks, in ``bench all`` order."""


def register(name: str) -> Callable[[Benchmark], Benchmark]:
    """Register ``fn`` as benchmark ``name`` (a decorator)."""

    def add(fn: Benchmark) -> Benchmark:
        if name in BENCHMARKS and BENCHMARKS[name] is not fn:
            raise ValueError(f"benchmark {name!r} is already registered")
        BENCHMARKS[name] = fn
        return fn

    return add


def load() -> dict[str, Benchmark]:
    """Import every benchmark module and return the registry."""
    for module in MODULES:
        importlib.import_module(f"voicebus.devkit.bench.{module}")
    return BENCHMARKS
