"""``bus-latency``: a caller's 20 ms frame from the gateway's WebSocket to media's handler.

voicebus: the load process sends Twilio ``media`` messages to the gateway
process, which decodes them and publishes PCM on ``vb.audio.<call>.in``; a
raw nats-py subscription per call (as media's) decodes the frame. Baseline:
the same stamped PCM frames published with raw nats-py straight to the same
subjects, on the same server, at the same rate. Both are timed from the
sender's clock to the handler's.
"""

from __future__ import annotations

from typing import Any

from voicebus.devkit.bench.registry import BenchOptions, register
from voicebus.devkit.bench.report import Curve, Report, Series, percentiles, ratio
from voicebus.devkit.bench.rig import SAMPLE_EVERY, Level, gateway_rig, nats_rig

GOAL_EXTRA_P99_MS = 1.0


def _row(path: str, level: Level) -> dict[str, Any]:
    pct = percentiles(level.in_lags_ms)
    cpu = level.cpu_s.get("gateway")
    return {
        "path": path,
        "calls": level.calls,
        "frames/s": round(level.sent_in / level.seconds),
        **{f"{k} ms": v for k, v in pct.items()},
        "measured calls": level.sampled_calls,
        "delivered": f"{level.received_in}/{level.expected_in}",
        "gateway CPU µs/frame": round(cpu * 1e6 / level.sent_in, 1)
        if cpu is not None and level.sent_in
        else None,
        "failed calls": level.failed_calls,
        "load gen late ticks": level.late_ticks,
    }


@register("bus-latency")
async def run(options: BenchOptions) -> Report:
    """Both paths at each load level; the p99 the bus path adds over raw nats-py."""
    levels = [10] if options.quick else [100, 500, 1000]
    seconds = 2.0 if options.quick else 5.0
    report = Report(
        name="bus-latency",
        title="caller frame: WebSocket send → gateway → NATS → handler, vs raw nats-py "
        "publish → subscribe of the same bytes",
        columns=[
            "path",
            "calls",
            "frames/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "measured calls",
            "delivered",
            "gateway CPU µs/frame",
            "failed calls",
            "load gen late ticks",
        ],
        rows=[],
        summary={},
    )
    base: dict[int, Level] = {}
    ours: dict[int, Level] = {}
    async with gateway_rig(options.work_dir / "bus-latency", speak=False) as rig:
        async with nats_rig(rig.nats_url) as raw:
            for calls in levels:
                base[calls] = await raw.level(calls, seconds)
        for calls in levels:
            profile = None
            if options.profile and calls == levels[-1]:
                profile = options.out_dir / "bus-latency.gateway.pyspy.txt"
            ours[calls] = await rig.level(calls, seconds, profile)
    for calls in levels:
        report.rows += [_row("raw nats-py", base[calls]), _row("voicebus gateway", ours[calls])]
        report.series += [
            Series(f"raw nats-py, {calls} calls", base[calls].in_lags_ms),
            Series(f"gateway, {calls} calls", ours[calls].in_lags_ms),
        ]
    p99 = {c: percentiles(ours[c].in_lags_ms)["p99"] for c in levels}
    b99 = {c: percentiles(base[c].in_lags_ms)["p99"] for c in levels}
    report.curves.append(
        Curve(
            "gateway p99",
            [float(c) for c in levels],
            [p99[c] or 0.0 for c in levels],
            "calls",
            "p99 ms",
        )
    )
    report.curves.append(
        Curve(
            "raw nats-py p99",
            [float(c) for c in levels],
            [b99[c] or 0.0 for c in levels],
            "calls",
            "p99 ms",
        )
    )
    extra: dict[int, float | None] = {c: _minus(p99[c], b99[c]) for c in levels}
    report.summary = {
        "p99 voicebus ms by calls": p99,
        "p99 raw nats-py ms by calls": b99,
        "p99 ratio by calls": {c: ratio(p99[c], b99[c]) for c in levels},
        "p99 added over raw nats-py ms": extra,
        "goal": f"≤ {GOAL_EXTRA_P99_MS} ms added at p99",
        "met at calls": [c for c in levels if (extra[c] or 1e9) <= GOAL_EXTRA_P99_MS],
    }
    top = ours[levels[-1]].profile
    if top:
        report.notes.append("gateway py-spy, hottest frames: " + "; ".join(top[:8]))
    report.notes.append(
        "The handler is a raw nats-py subscription per call in the benchmark process, decoding "
        "the frame as media's does; it stands in for media so media's own load is not measured. "
        f"Every {SAMPLE_EVERY}th call is measured (all calls are sent): one Python process "
        "reading every frame of 1,000 calls would be the bottleneck itself."
    )
    return report.finish()


def _minus(a: float | None, b: float | None) -> float | None:
    return round(a - b, 3) if a is not None and b is not None else None
