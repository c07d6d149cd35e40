"""``failover``: the primary TTS vendor dies mid-sentence → the caller's gap until backup audio.

The stack (gateway, media, orchestrator as their own processes) serves an agent whose
TTS is Deepgram's stand-in, run as its own process pacing audio at real time, with
the local ``hibari`` voice as fallback. For each call the stand-in is started, the
simulated Twilio caller waits until it has heard ``KILL_AFTER_MS`` of the greeting,
and the stand-in is killed (SIGKILL). The gap is the first stretch with no agent audio
at the caller after the kill (0 when the audio already sent covered the switch).

Baseline, same run: the same agent with no fallback, where the rest of the sentence
is never heard (its "gap" is the remainder of the call).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import sys
import time
from pathlib import Path
from typing import Final

from voicebus.devkit.bench.harness import stack
from voicebus.devkit.bench.registry import BenchOptions, register
from voicebus.devkit.bench.report import Report, Series, percentiles
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.ports import LOOPBACK, free_port
from voicebus.devkit.vendors.scenarios import TEST_KEY

GOAL_MS: Final = 500.0
KILL_AFTER_MS: Final = 1200
GREETING: Final = (
    "Hello and welcome to Acme support. Your call matters to us, and an agent will "
    "help you with your order in just a moment."
)


def _agents(directory: Path, port: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, fallback in (("failover", "  fallback: [{engine: hibari}]\n"), ("nofallback", "")):
        (directory / f"{name}.yaml").write_text(
            "name: failover bench\nsystem_prompt: Be brief.\n"
            f"greeting: {GREETING}\n"
            "llm: {engine: scripted}\nstt: {engine: 'null'}\n"
            f'tts:\n  engine: deepgram\n  options: {{base_url: "http://{LOOPBACK}:{port}"}}\n'
            + fallback,
            encoding="utf-8",
        )


async def _vendor(port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voicebus.devkit.vendors",
        "--port",
        str(port),
        "--speed",
        "1",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(30):
        while True:
            with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
                return process
            await asyncio.sleep(0.05)


def _gap_after(spans: list[tuple[float, float]], at_ms: float) -> float | None:
    """The first silence between two stretches of agent audio that ends after ``at_ms``."""
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start > at_ms:
            return start - end
    return None


async def _call(gateway: str, agent: str, port: int) -> tuple[float | None, float]:
    vendor = await _vendor(port)
    try:
        async with TwilioCaller(gateway, DEV_TWILIO_AUTH_TOKEN, agent) as call:
            if not await call.wait_for_agent_audio(ms=KILL_AFTER_MS, timeout=30):
                raise RuntimeError("the greeting did not start")
            killed_ms = call.now_ms
            vendor.kill()
            await call.wait_for_agent_silence(quiet_ms=1500, timeout=30)
        result = await call.hang_up()
    finally:
        if vendor.returncode is None:
            vendor.kill()
        await vendor.wait()
    after = sum(end - max(start, killed_ms) for start, end in result.heard_spans if end > killed_ms)
    return _gap_after(result.heard_spans, killed_ms), after


@register("failover")
async def run(options: BenchOptions) -> Report:
    """Gap heard by the caller when the primary TTS dies mid-sentence."""
    calls = 3 if options.quick else 20
    report = Report(
        name="failover",
        title="primary TTS (Deepgram stand-in, its own process) killed mid-sentence → the "
        "caller's gap until the backup's audio (hibari re-issues the sentence)",
        columns=[
            "agent",
            "calls",
            "gap median ms",
            "gap p95 ms",
            "gap max ms",
            "audio heard after the kill (median ms)",
        ],
        rows=[],
        summary={},
    )
    port = free_port()
    work = options.work_dir / "failover"
    _agents(work / "agents", port)
    env = {"VB_ORCHESTRATOR_AGENTS_DIR": str(work / "agents"), "VB_ENGINE_KEY_DEEPGRAM": TEST_KEY}
    async with stack(work / "stack", ["gateway", "media", "orchestrator"], env) as bench:
        gateway = next(s.url for s in bench.dev.services if s.name == "gateway")
        for agent, count in (("failover", calls), ("nofallback", 3)):
            gaps: list[float] = []
            heard: list[float] = []
            for _ in range(count):
                gap, after = await _call(gateway, agent, port)
                heard.append(after)
                if agent != "failover":
                    continue  # no backup: nothing to wait for, only what was lost counts
                if gap is not None:
                    gaps.append(gap)
                elif after > KILL_AFTER_MS:
                    gaps.append(0.0)  # the audio already sent covered the switch: no gap
                await asyncio.sleep(0.3)
            p = percentiles(gaps, (50.0, 95.0))
            report.rows.append(
                {
                    "agent": agent,
                    "calls": count,
                    "gap median ms": p["p50"],
                    "gap p95 ms": p["p95"],
                    "gap max ms": round(max(gaps), 1) if gaps else None,
                    "audio heard after the kill (median ms)": percentiles(heard, (50.0,))["p50"],
                }
            )
            if agent == "failover":
                report.series.append(Series("gap until backup audio", gaps))
                silent = sum(1 for gap in gaps if gap == 0.0)
                report.notes.append(
                    f"{silent} of {count} calls had no gap at all (the audio "
                    "already sent covered the switch)"
                )
                if len(gaps) < count:
                    report.notes.append(f"{count - len(gaps)} call(s) heard nothing after the kill")
    failover = report.rows[0]
    report.summary = {
        "gap median ms": failover["gap median ms"],
        "gap p95 ms": failover["gap p95 ms"],
        "no fallback: audio after the kill, median ms": report.rows[1][
            "audio heard after the kill (median ms)"
        ],
        "goal": f"≤ {GOAL_MS:.0f} ms gap",
        "met": bool(failover["gap p95 ms"] is not None and failover["gap p95 ms"] <= GOAL_MS),
    }
    report.notes.append(
        f"the stand-in is killed after the caller heard {KILL_AFTER_MS} ms of the greeting; "
        "Deepgram gives no word timings, so the backup re-issues the whole sentence"
    )
    report.notes.append(f"run took {time.monotonic() - report.started:.0f} s")
    return report.finish()
