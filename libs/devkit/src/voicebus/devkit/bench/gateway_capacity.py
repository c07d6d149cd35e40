"""``gateway-capacity``: the most Twilio calls one gateway process carries with p99 frame
lag under 20 ms in both directions, its CPU per call, against a floor measured in the same run.

Each simulated call sends 50 frames/s in and, while its agent speaks (half of
the time, staggered), receives 50 frames/s out, echoing marks. Calls are added
in steps; each step is measured for a few seconds. Two references, same load
generator, same machine, same run:

- **floor**: a minimal relay doing the same per-message work on the same library
  stack (picows + uvloop + msgspec + hand-built ``HPUB``; ``floor_relay``), in
  and out: what Python can do here. Goal: the gateway carries ≥ 0.8× its calls.
- **bare websockets**: a ``websockets`` server that only JSON-parses and
  base64-decodes (inbound only): the old baseline, kept for comparison.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from voicebus.devkit.bench.harness import CpuWindow, LoadProcess
from voicebus.devkit.bench.registry import BenchOptions, register
from voicebus.devkit.bench.report import Curve, Report, Series, percentiles, ratio
from voicebus.devkit.bench.rig import GatewayRig, floor_rig, gateway_rig
from voicebus.devkit.ports import free_port

LAG_LIMIT_MS = 20.0
GOAL_CALLS = 300
GOAL_FLOOR_RATIO = 0.8
GOAL_CPU_MS = 3.0
CPU_AT_CALLS = 100


def _steps(quick: bool) -> list[int]:
    return [10] if quick else [50, 100, 200, 300, 400, 500, 600, 800, 1000]


async def _ramp(
    steps: list[int], measure: Callable[[int], Awaitable[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Measure each step until two in a row miss the limit (one may be noise)."""
    rows: list[dict[str, Any]] = []
    misses = 0
    for calls in steps:
        row = await measure(calls)
        rows.append(row)
        misses = misses + 1 if not row["ok"] else 0
        if misses == 2:
            break
    return rows


def _best(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    passing = [r for r in rows if r["ok"]]
    return max(passing, key=lambda r: r["calls"]) if passing else None


def _at(rows: list[dict[str, Any]], calls: int, column: str) -> float | None:
    row = next((r for r in rows if r["calls"] == calls), rows[0] if rows else None)
    return None if row is None or row[column] is None else float(row[column])


@register("gateway-capacity")
async def run(options: BenchOptions) -> Report:
    """Ramp the floor, the gateway and the bare server; report the largest passing N each."""
    seconds = 2.0 if options.quick else 4.0
    steps = _steps(options.quick)
    report = Report(
        name="gateway-capacity",
        title=f"Twilio calls per gateway process at p99 frame lag < {LAG_LIMIT_MS:g} ms in and "
        "out, vs a minimal relay on the same stack (floor) and a bare websockets server",
        columns=[
            "server",
            "calls",
            "p99 in ms",
            "p99 out ms",
            "ok",
            "CPU cores",
            "CPU ms per call-s",
            "CPU µs per message",
            "failed calls",
        ],
        rows=[],
        summary={},
    )
    base_rows = await _baseline(options, steps, seconds, report)
    floor_rows = await _relay(
        "floor relay", floor_rig(options.work_dir / "floor"), options, steps, seconds, report
    )
    ours_rows = await _relay(
        "voicebus gateway",
        gateway_rig(options.work_dir / "gateway-capacity", speak=True),
        options,
        steps,
        seconds,
        report,
        profile=options.profile,
    )
    two_rows: list[dict[str, Any]] = []
    if not options.quick:  # does a second process on the same port (SO_REUSEPORT) add calls?
        two_rows = await _relay(
            "2 gateway processes (SO_REUSEPORT)",
            gateway_rig(options.work_dir / "gateway-2", speak=True, processes=2),
            options,
            [s for s in steps if s >= 300],
            seconds,
            report,
        )
    report.rows = base_rows + floor_rows + ours_rows + two_rows
    best, floor, base = _best(ours_rows), _best(floor_rows), _best(base_rows)
    for label, rows in (
        ("gateway", ours_rows),
        ("floor relay", floor_rows),
        ("bare websockets", base_rows),
    ):
        report.curves.append(
            Curve(
                f"{label} p99 lag",
                [float(r["calls"]) for r in rows],
                [r["p99 worst ms"] for r in rows],
                "calls",
                "p99 frame lag ms",
                LAG_LIMIT_MS,
            )
        )
    calls, floor_calls = (best["calls"] if best else 0), (floor["calls"] if floor else 0)
    floor_ratio = ratio(calls, floor_calls or None)
    cpu = _at(ours_rows, CPU_AT_CALLS, "CPU ms per call-s")
    report.summary = {
        "calls per gateway process (p99 in and out < 20 ms)": calls,
        "floor calls (minimal relay, same stack, same run)": floor_calls,
        "gateway / floor": floor_ratio,
        "baseline calls (bare websockets, inbound only)": base["calls"] if base else 0,
        "calls with 2 gateway processes on one port (SO_REUSEPORT)": (
            two["calls"] if (two := _best(two_rows)) else (0 if two_rows else None)
        ),
        f"gateway CPU ms per call-second at {CPU_AT_CALLS} calls": cpu,
        f"floor CPU ms per call-second at {CPU_AT_CALLS} calls": _at(
            floor_rows, CPU_AT_CALLS, "CPU ms per call-s"
        ),
        f"gateway CPU µs per message at {CPU_AT_CALLS} calls": _at(
            ours_rows, CPU_AT_CALLS, "CPU µs per message"
        ),
        f"floor CPU µs per message at {CPU_AT_CALLS} calls": _at(
            floor_rows, CPU_AT_CALLS, "CPU µs per message"
        ),
        "gateway p99 in / out ms at its best step": [
            best["p99 in ms"] if best else None,
            best["p99 out ms"] if best else None,
        ],
        "goal": f"≥ {GOAL_FLOOR_RATIO}× floor, ≥ {GOAL_CALLS} calls per process, "
        f"≤ {GOAL_CPU_MS} ms CPU per call-second at {CPU_AT_CALLS} calls",
        "met": bool(
            calls >= GOAL_CALLS
            and floor_ratio is not None
            and floor_ratio >= GOAL_FLOOR_RATIO
            and cpu is not None
            and cpu <= GOAL_CPU_MS
        ),
        "largest step tried": steps[-1],
    }
    return report.finish()


async def _baseline(
    options: BenchOptions, steps: list[int], seconds: float, report: Report
) -> list[dict[str, Any]]:
    _note_load(report, "bare websockets")
    port = free_port()
    server = await LoadProcess.start({"port": port}, module="voicebus.devkit.bench.baseline_ws")
    assert server.process.stdout is not None
    await server.process.stdout.readline()  # listening
    load = await LoadProcess.start({"kind": "ws", "ws_url": f"ws://127.0.0.1:{port}/"})
    try:

        async def measure(calls: int) -> dict[str, Any]:
            await load.request("calls", calls)
            await asyncio.sleep(2.0)
            cpu = CpuWindow({"server": server.pid})
            sent, seen = await asyncio.gather(
                load.request("measure", seconds), server.request("measure", seconds)
            )
            used = cpu.used()["server"]
            lags = seen["lags_ms"]
            p99 = percentiles(lags)["p99"]
            worst = p99 if p99 is not None and len(lags) >= 0.95 * sent["sent"] else 1e4
            if calls == steps[-1] or worst >= LAG_LIMIT_MS:
                report.series.append(Series(f"bare websockets, {calls} calls", lags))
            return _row(
                "bare websockets",
                calls,
                p99,
                None,
                worst,
                used,
                seconds,
                seen["messages"],
                sent["failed_calls"],
            )

        return await _ramp(steps, measure)
    finally:
        await load.close()
        await server.close()


async def _relay(
    label: str,
    rig_context: AbstractAsyncContextManager[GatewayRig],
    options: BenchOptions,
    steps: list[int],
    seconds: float,
    report: Report,
    *,
    profile: bool = False,
) -> list[dict[str, Any]]:
    """Ramp one relay (the gateway or the floor), timing frames in and out."""
    _note_load(report, label)
    async with rig_context as rig:
        hottest: list[str] = []

        async def measure(calls: int) -> dict[str, Any]:
            path = None
            if profile and calls == CPU_AT_CALLS:
                path = options.out_dir / "gateway-capacity.gateway.pyspy.txt"
            level = await rig.level(calls, seconds, path)
            if level.profile:
                hottest[:] = level.profile
            p_in = percentiles(level.in_lags_ms)["p99"]
            p_out = percentiles(level.out_lags_ms)["p99"]
            delivered = level.received_in >= 0.95 * level.expected_in and (
                level.received_out >= 0.9 * level.sent_out
            )
            worst = max(p_in or 1e4, p_out or 1e4) if delivered else 1e4
            report.series.append(Series(f"{label} in, {calls} calls", level.in_lags_ms))
            messages = level.sent_in + level.sent_out + level.received_out // 5  # + mark echoes
            return _row(
                label,
                calls,
                p_in,
                p_out,
                worst,
                sum(s for name, s in level.cpu_s.items() if name.startswith("gateway")),
                seconds,
                messages,
                level.failed_calls,
            )

        rows = await _ramp(steps, measure)
        if hottest:
            report.notes.append(
                f"{label} py-spy at {CPU_AT_CALLS} calls, hottest frames: " + "; ".join(hottest)
            )
        return rows


def _note_load(report: Report, label: str) -> None:
    """The load average as a series starts: other work on a shared machine shows here."""
    one, five, fifteen = os.getloadavg()
    report.notes.append(
        f"load average as the {label} series started: {one:.2f} {five:.2f} {fifteen:.2f}"
    )


def _row(server: str, calls: int, p_in: float | None, p_out: float | None, worst: float,
         cpu_s: float, seconds: float, messages: int, failed: int) -> dict[str, Any]:  # fmt: skip
    return {
        "server": server,
        "calls": calls,
        "p99 in ms": p_in,
        "p99 out ms": p_out,
        "p99 worst ms": round(worst, 3),
        "ok": worst < LAG_LIMIT_MS and failed == 0,
        "CPU cores": round(cpu_s / seconds, 3),
        "CPU ms per call-s": round(cpu_s * 1000 / (calls * seconds), 3),
        "CPU µs per message": round(cpu_s * 1e6 / messages, 1) if messages else None,
        "failed calls": failed,
    }
