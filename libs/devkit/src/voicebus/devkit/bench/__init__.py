"""Benchmarks against baselines: ``voicebus bench <name>``.

Each benchmark starts what it needs (embedded NATS and PostgreSQL, the services
as their own processes), runs a bounded load on loopback only, runs its
baseline in the same run, and writes ``bench/results/<name>.json``, ``.md`` and
``.png``. Absolute times on a shared machine are noise: the ratio to the
baseline and CPU per unit of work are the figures to compare.
"""

from voicebus.devkit.bench.registry import (
    BENCHMARKS,
    MODULES,
    Benchmark,
    BenchOptions,
    load,
    register,
)
from voicebus.devkit.bench.report import Curve, Report, Series

__all__ = [
    "BENCHMARKS",
    "MODULES",
    "BenchOptions",
    "Benchmark",
    "Curve",
    "Report",
    "Series",
    "load",
    "register",
]
