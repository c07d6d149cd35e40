"""``media-density``: calls one media process serves with VAD and turn detection running,
and its CPU per call-second, against pipecat's ``SileroVADAnalyzer`` alone; with the
smart-turn model off, then on (as the local engines have it by default: asked after
200 ms of silence).

The media service runs as deployed, claiming calls from ``call.started`` events;
the agent's STT and TTS are the zero-cost ``null`` and ``silent`` engines, so
what is measured is the bus, Silero VAD (batched across calls), turn-taking
and the per-call pipecat pipeline. A load process feeds each call the same
two spoken lines at real time, staggered; the turns media reports
(``speech.user.stopped``) show whether it kept up. Baseline: one pipecat
``SileroVADAnalyzer`` per call on the same audio, in a process of its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client
from nats.aio.msg import Msg

from voicebus.contracts import subjects
from voicebus.contracts.events import CallStarted, CallStartedData, Direction
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import TurnSettings
from voicebus.devkit.bench.harness import (
    AgentOwner,
    CpuWindow,
    LoadProcess,
    Profiler,
    connect,
    pid_of,
    stack,
    url_of,
)
from voicebus.devkit.bench.registry import BenchOptions, register
from voicebus.devkit.bench.report import Curve, Report, ratio
from voicebus.engines.tts.hibari import HibariTTS

GOAL_CALLS_PER_CORE = 50
GOAL_SMART_TURN_CALLS_PER_CORE = 100
LINES = ("Hi, where is my order one two three four?", "Thanks, that is all I needed.")
MEDIA_ENV = {
    "VB_MEDIA_DEFAULT_STT": "null",
    "VB_MEDIA_DEFAULT_TTS": "silent",
    "VB_MEDIA_WARM_ENGINES": "false",
}
SMART_TURN = {False: TurnSettings(smart_turn=False), True: TurnSettings(smart_turn=True,
                                                                      vad_stop_ms=200)}  # fmt: skip


async def speech_file(path: Path) -> float:
    """Two spoken lines with pauses (PCM16LE 8 kHz) written to ``path``; their seconds."""
    tts = HibariTTS()
    pcm = b""
    for text in LINES:
        pcm += bytes(8000 * 2 * 8 // 10)
        pcm += b"".join([chunk async for chunk in tts.synthesize(text, 8000)])
    pcm += bytes(8000 * 2)
    await asyncio.to_thread(path.write_bytes, pcm)
    return len(pcm) / 16000


class _Turns:
    def __init__(self) -> None:
        self.count = 0

    async def on_event(self, _msg: Msg) -> None:
        self.count += 1


async def _claim(nc: Client, media_url: str, call_ids: list[str], total: int) -> None:
    js = nc.jetstream()
    for call_id in call_ids:
        event = CallStarted(
            tenant_id="bench", call_id=call_id, source="bench/1",
            data=CallStartedData(direction=Direction.INBOUND, provider="twilio",
                                 agent_id="bench", gateway_instance="bench"),
        )  # fmt: skip
        await js.publish(event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id})
    async with httpx.AsyncClient(timeout=5.0) as client:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            text = (await client.get(f"{media_url}/metrics")).text
            line = next((x for x in text.splitlines() if x.startswith("voicebus_media_calls ")), "")
            if line and float(line.split()[1]) >= total:
                return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"media did not claim {total} calls in time")


async def _baseline(pcm_path: Path, calls: int, seconds: float, mode: str) -> dict[str, Any]:
    config = json.dumps(
        {"pcm_path": str(pcm_path), "calls": calls, "seconds": seconds, "mode": mode}
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voicebus.devkit.bench.vad_baseline", config,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


@register("media-density")
async def run(options: BenchOptions) -> Report:
    """Ramp claimed calls on one media process; CPU per call-second against pipecat's VAD."""
    steps = [4] if options.quick else [10, 25, 50, 100, 200]
    seconds = 3.0 if options.quick else 8.0
    report = Report(
        name="media-density",
        title="calls per media process with VAD + turn detection (STT/TTS zero-cost), vs "
        "pipecat's SileroVADAnalyzer alone on the same audio",
        columns=[
            "path",
            "calls",
            "CPU cores",
            "CPU ms per call-s",
            "turns per call-min",
            "smart-turn checks per call-min",
            "late ticks",
        ],
        rows=[],
        summary={},
    )
    work = options.work_dir / "media-density"
    work.mkdir(parents=True, exist_ok=True)
    pcm_path = work / "speech.pcm"
    loop_s = await speech_file(pcm_path)
    base_calls = steps[min(1, len(steps) - 1)]
    base_ms = 0.0
    for mode, label in (("async", "analyze_audio"), ("inline", "scored inline")):
        base = await _baseline(pcm_path, base_calls, seconds, mode)
        ms = base["cpu_s"] * 1000 / (base_calls * seconds)
        base_ms = ms  # the inline one, run last, is the cheaper and stricter baseline
        report.rows.append({"path": f"pipecat SileroVADAnalyzer alone, {label}",
                            "calls": base_calls, "CPU cores": round(base["cpu_s"] / seconds, 3),
                            "CPU ms per call-s": round(ms, 2),
                            "late ticks": base["late_ticks"]})  # fmt: skip
    best: dict[bool, dict[str, Any] | None] = {}
    for smart in (False, True):
        rows = await _voicebus(options, work, pcm_path, steps, seconds, report, smart)
        report.rows += rows
        kept_up = [r for r in rows if r["kept up"]]
        best[smart] = kept_up[-1] if kept_up else None
        report.curves.append(Curve(f"media CPU ms per call-second, smart turn {_on(smart)}",
                                   [float(r["calls"]) for r in rows],
                                   [r["CPU ms per call-s"] for r in rows], "calls",
                                   "CPU ms per call-second"))  # fmt: skip
    off, on = best[False] or {}, best[True] or {}
    ms_off, ms_on = off.get("CPU ms per call-s"), on.get("CPU ms per call-s")
    core_off = round(1000 / ms_off) if ms_off else 0
    core_on = round(1000 / ms_on) if ms_on else 0
    report.summary = {
        "media CPU ms per call-second, smart turn off": ms_off,
        "media CPU ms per call-second, smart turn on": ms_on,
        "pipecat VAD alone (scored inline) CPU ms per call-second": round(base_ms, 2),
        "ratio (smart turn off)": ratio(ms_off, base_ms),
        "calls per media core, smart turn off": core_off,
        "calls per media core, smart turn on": core_on,
        "smart-turn checks per call-minute": on.get("smart-turn checks per call-min"),
        "most calls measured keeping up, off / on": f"{off.get('calls', 0)} / {on.get('calls', 0)}",
        "goal": f"≥ {GOAL_CALLS_PER_CORE} calls per media core; with smart turn on "
        f"≥ {GOAL_SMART_TURN_CALLS_PER_CORE}",
        "met": core_off >= GOAL_CALLS_PER_CORE and core_on >= GOAL_SMART_TURN_CALLS_PER_CORE,
        "speech loop s": round(loop_s, 2),
    }
    report.notes.append(
        "Kept up: media used under 0.9 of a core and reported at least 80 % of the turns "
        "per call-minute it reported at the smallest step."
    )
    return report.finish()


def _on(smart: bool) -> str:
    return "on" if smart else "off"


def _checks(media_url: str) -> float:
    """Smart-turn checks media made so far (its /metrics)."""
    text = httpx.get(f"{media_url}/metrics", timeout=5.0).text
    return sum(float(line.split()[1]) for line in text.splitlines()
               if line.startswith("voicebus_media_smart_turn_checks_total{"))  # fmt: skip


async def _voicebus(options: BenchOptions, work: Path, pcm_path: Path, steps: list[int],
                    seconds: float, report: Report, smart: bool
                    ) -> list[dict[str, Any]]:  # fmt: skip
    rows: list[dict[str, Any]] = []
    async with stack(work / f"stack-{_on(smart)}", ["media"], MEDIA_ENV) as bench:
        assert bench.dev.nats_url is not None
        nc = await connect(bench.dev.nats_url)
        await AgentOwner(turn=SMART_TURN[smart]).serve(nc)
        turns = _Turns()
        await nc.subscribe(subjects.evt_filter(event_type="speech.user.stopped"),
                           cb=turns.on_event)  # fmt: skip
        feeder = await LoadProcess.start(
            {"kind": "speech", "nats_url": bench.dev.nats_url, "pcm_path": str(pcm_path)}
        )
        media_pid, media_url = pid_of(bench.dev, "media"), url_of(bench.dev, "media")
        first_rate: float | None = None
        try:
            total = 0
            for calls in steps:
                ids = [new_id() for _ in range(calls - total)]
                total = calls
                await _claim(nc, media_url, ids, total)
                await feeder.request("feed", ids)
                await asyncio.sleep(3.0)
                cpu = CpuWindow({"media": media_pid})
                profiler = None
                if options.profile and calls == steps[-1]:
                    out = options.out_dir / f"media-density.media.smart-turn-{_on(smart)}.pyspy.txt"
                    profiler = Profiler(media_pid, seconds, out)
                before, checks_before = turns.count, await asyncio.to_thread(_checks, media_url)
                stats = await feeder.request("measure", seconds)
                used = cpu.used()["media"]
                rate = (turns.count - before) * 60 / (calls * seconds)
                checks = await asyncio.to_thread(_checks, media_url) - checks_before
                first_rate = first_rate or rate
                kept = used / seconds < 0.9 and rate >= 0.8 * first_rate
                rows.append({"path": f"voicebus media, smart turn {_on(smart)}", "calls": calls,
                             "CPU cores": round(used / seconds, 3),
                             "CPU ms per call-s": round(used * 1000 / (calls * seconds), 2),
                             "turns per call-min": round(rate, 1),
                             "smart-turn checks per call-min":
                                 round(checks * 60 / (calls * seconds), 1),
                             "late ticks": stats["late_ticks"], "kept up": kept})  # fmt: skip
                if profiler is not None:
                    hottest = "; ".join(await profiler.summary())
                    report.notes.append(f"media py-spy (smart turn {_on(smart)}): {hottest}")
                if not kept:
                    break
        finally:
            await feeder.close()
            await nc.drain()
    return rows
