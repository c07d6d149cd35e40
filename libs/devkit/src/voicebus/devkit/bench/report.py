"""What a benchmark reports, and writing it as JSON, a markdown table and a PNG plot."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

PERCENTILES: tuple[float, ...] = (50.0, 99.0, 99.9)


def percentiles(
    values: Sequence[float] | Iterable[float], points: Sequence[float] = PERCENTILES
) -> dict[str, float | None]:
    """``{"p50": …, "p99": …, "p99.9": …}`` of ``values`` (None for each when empty)."""
    data = np.fromiter(values, dtype=np.float64)
    keys = [f"p{p:g}" for p in points]
    if data.size == 0:
        return dict.fromkeys(keys)
    found = np.percentile(data, points)
    return {key: round(float(v), 3) for key, v in zip(keys, found, strict=True)}


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline`` rounded to 3 digits; None when either is missing or baseline is 0."""
    if value is None or baseline is None or baseline == 0 or math.isnan(baseline):
        return None
    return round(value / baseline, 3)


def environment() -> dict[str, Any]:
    """Where and when a run happened; the load average says how shared the CPU was."""
    load1, load5, load15 = os.getloadavg()
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
    }


@dataclass
class Series:
    """One latency (or cost) distribution, plotted as a CDF."""

    label: str
    values: list[float]
    unit: str = "ms"


@dataclass
class Curve:
    """A measured curve (y against x), plotted as a line."""

    label: str
    x: list[float]
    y: list[float]
    x_label: str
    y_label: str
    limit: float | None = None
    """A horizontal line to draw (a goal or a threshold)."""


@dataclass
class Report:
    """The outcome of one benchmark run.

    Attributes:
        name: the benchmark's name (file stem of its results).
        title: one line saying what was measured.
        columns: column order of the table.
        rows: one row per measured configuration (voicebus and baseline).
        summary: the headline figures: voicebus, baseline, ratio, goal, met.
        notes: what limits it, caveats, profile findings.
        series: distributions for the plot.
        curves: curves for the plot.
        environment: machine, load and time of the run.
        duration_s: wall time of the run.
    """

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=environment)
    duration_s: float = 0.0
    started: float = field(default_factory=time.monotonic, repr=False)

    def finish(self) -> Report:
        """Stamp the wall time since the report was created."""
        self.duration_s = round(time.monotonic() - self.started, 1)
        return self

    def to_json(self) -> dict[str, Any]:
        """Everything but the raw distributions (their percentiles are in the rows)."""
        data = asdict(self)
        data.pop("started")
        data["series"] = [
            {"label": s.label, "unit": s.unit, "count": len(s.values), **percentiles(s.values)}
            for s in self.series
        ]
        return data


def markdown(report: Report) -> str:
    """The report as a markdown section: summary, table, notes."""
    env = report.environment
    lines = [f"# {report.name}", "", report.title, ""]
    lines += [f"- **{key}**: {_cell(value)}" for key, value in report.summary.items()]
    lines += [
        "",
        f"Run {env.get('started_at')} on {env.get('cpus')} CPUs, load average at start "
        f"{env.get('load_average_at_start')}, {report.duration_s} s.",
        "",
        "| " + " | ".join(report.columns) + " |",
        "|" + "|".join("---" for _ in report.columns) + "|",
    ]
    for row in report.rows:
        lines.append("| " + " | ".join(_cell(row.get(col)) for col in report.columns) + " |")
    if report.notes:
        lines += ["", *[f"- {note}" for note in report.notes]]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return str(value)


def plot(report: Report, path: Path) -> None:
    """Distributions as CDFs (log x) and curves as lines, one panel each kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = int(bool(report.series)) + int(bool(report.curves)) or 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    col = 0
    if report.series:
        ax = axes[0][col]
        col += 1
        for series in report.series:
            data = np.asarray(series.values, dtype=np.float64)
            if data.size == 0:
                continue
            cdf = np.linspace(0.0, 1.0, min(data.size, 2000))  # quantiles, not every point
            x = np.quantile(data, cdf)
            ax.plot(np.maximum(x, 1e-3), cdf, label=f"{series.label} (n={data.size:,})")
        ax.set_xscale("log")
        ax.set_xlabel(report.series[0].unit)
        ax.set_ylabel("fraction ≤ x")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if report.curves:
        ax = axes[0][col]
        for curve in report.curves:
            ax.plot(curve.x, curve.y, marker="o", label=curve.label)
            if curve.limit is not None:
                ax.axhline(curve.limit, linestyle="--", color="grey", linewidth=1)
        ax.set_xlabel(report.curves[0].x_label)
        ax.set_ylabel(report.curves[0].y_label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{report.name}: {report.title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: Report, out_dir: Path) -> list[Path]:
    """Write ``<name>.json``, ``<name>.md`` and ``<name>.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / report.name
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    paths[0].write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n")
    paths[1].write_text(markdown(report))
    plot(report, paths[2])
    return paths
