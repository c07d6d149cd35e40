"""CPU per call-second of media's VAD path, against pipecat's ``SileroVADAnalyzer`` alone.

Not a test: a probe to run by hand (the ``media-density`` benchmark builds on it)::

    .venv/bin/python services/media/tests/density_probe.py pipeline-batched 50 20

Feeds N calls the same speech (synthesized by the local TTS) at real time, 20 ms
frames, and prints one JSON line: process CPU per call-second of audio, cores
used, and how many 20 ms ticks ran late. Modes:

- ``pipecat-analyzer``: pipecat's ``SileroVADAnalyzer`` per call, its own async
  path (a thread hop per frame) — the baseline;
- ``pipecat-analyzer-sync``: the same analyzer scored inline;
- ``shared-inline`` / ``shared-batched``: media's analyzers alone (shared session;
  scored inline, or batched across calls);
- ``pipeline`` / ``pipeline-batched``: media's whole per-call pipecat pipeline
  (VAD, turns, null STT, silent TTS, output) with inline or batched VAD.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams

from voicebus.contracts.audio import AudioFrame
from voicebus.contracts.events import Envelope
from voicebus.contracts.rpc import TurnSettings
from voicebus.engines.base import STT, TTS
from voicebus.engines.builtin import load_builtin_engines
from voicebus.engines.tts.hibari import HibariTTS
from voicebus.media.events import CallEvents
from voicebus.media.models import SharedModels
from voicebus.media.pipeline import CallPipeline, PipelineConfig

RATE = 8000
LINES = ("Hi, where is my order one two three four?", "Thanks, that is all I needed.")

Feed = Callable[[bytes, int], Awaitable[Any]]


class CountingOutlet:
    """Counts what a pipeline sends."""

    def __init__(self) -> None:
        self.events = 0

    async def send_audio(self, frame: AudioFrame) -> None:
        """Drop a frame."""

    def emit(self, event: Envelope) -> None:
        """Count an event."""
        self.events += 1

    async def clear(self, utterance_id: str | None) -> None:
        """Ignore a clear."""


async def speech() -> list[bytes]:
    """Two spoken lines with pauses, cut into 20 ms frames."""
    tts = HibariTTS()
    pcm = b""
    for text in LINES:
        pcm += bytes(RATE * 2 * 8 // 10)
        pcm += b"".join([chunk async for chunk in tts.synthesize(text, RATE)])
    pcm += bytes(RATE * 2)
    return [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]


async def scored_inline(analyzer: SileroVADAnalyzer, pcm: bytes) -> None:
    """pipecat's analyzer without its thread hop."""
    analyzer._run_analyzer(pcm)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def feeders(
    mode: str, calls: int, outlets: list[CountingOutlet]
) -> tuple[list[Feed], list[CallPipeline]]:
    load_builtin_engines()
    models = SharedModels(vad_batch_wait_ms=10 if mode.endswith("batched") else 0)
    await models.load(smart_turn=False)
    params = VADParams(start_secs=0.2, stop_secs=0.3)
    feeds: list[Feed] = []
    pipelines: list[CallPipeline] = []
    for i in range(calls):
        if mode == "pipecat-analyzer":
            stock = SileroVADAnalyzer(params=params)
            stock.set_sample_rate(RATE)
            feeds.append(lambda pcm, _ts, a=stock: a.analyze_audio(pcm))
        elif mode == "pipecat-analyzer-sync":
            stock = SileroVADAnalyzer(params=params)
            stock.set_sample_rate(RATE)
            feeds.append(lambda pcm, _ts, a=stock: scored_inline(a, pcm))
        elif mode.startswith("shared"):
            ours = models.vad(params, RATE)
            ours.set_sample_rate(RATE)
            feeds.append(lambda pcm, _ts, a=ours: a.analyze_audio(pcm))
        else:
            outlet = CountingOutlet()
            outlets.append(outlet)
            config = PipelineConfig(
                sample_rate=RATE, turn=TurnSettings(), vad=models.vad(params, RATE),
                turn_analyzer=None, stt=STT.create("null", {}), tts=TTS.create("silent", {}),
            )  # fmt: skip
            pipeline = CallPipeline(config, outlet, CallEvents("t", f"c{i}", "media/probe"),
                                    time.monotonic())  # fmt: skip
            await pipeline.start()
            pipelines.append(pipeline)
            feeds.append(lambda pcm, ts, p=pipeline: p.audio(AudioFrame(pcm, RATE, ts // 20, ts)))
    return feeds, pipelines


async def probe(mode: str, calls: int, seconds: float) -> dict[str, Any]:
    frames = await speech()
    outlets: list[CountingOutlet] = []
    feeds, pipelines = await feeders(mode, calls, outlets)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.5)
    ticks = int(seconds / 0.02)
    late = 0
    start_cpu, start = cpu_s(), loop.time()
    for k in range(ticks):
        delay = start + k * 0.02 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.02:
            late += 1
        pcm = frames[k % len(frames)]
        # One task per call and frame, as each call's NATS subscription has its own.
        await asyncio.gather(*(feed(pcm, k * 20) for feed in feeds))
    used = cpu_s() - start_cpu
    for pipeline in pipelines:
        await pipeline.stop()
    return {
        "mode": mode,
        "calls": calls,
        "ms_cpu_per_call_second": round(used * 1000 / (calls * seconds), 2),
        "cores": round(used / seconds, 3),
        "late_ticks": late,
        "events": sum(o.events for o in outlets),
    }


def main() -> None:
    """``density_probe.py MODE CALLS SECONDS``."""
    logger.remove()
    mode, calls, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(probe(mode, calls, seconds))))


if __name__ == "__main__":
    main()
