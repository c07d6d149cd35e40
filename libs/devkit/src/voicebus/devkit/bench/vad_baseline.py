"""The media-density baseline: pipecat's ``SileroVADAnalyzer`` alone, one per call, fed the
same speech at real time through its public ``analyze_audio`` (which hops to a thread
for every frame), or with ``"mode": "inline"`` scored on the event loop.

``python -m voicebus.devkit.bench.vad_baseline '{"pcm_path": …, "calls": N, "seconds": S}'``
prints one JSON line: CPU seconds used while feeding, and ticks that ran late.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from typing import Any

from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(config: dict[str, Any]) -> dict[str, Any]:
    with open(config["pcm_path"], "rb") as f:  # noqa: ASYNC230 - read once, before the clock
        pcm = f.read()
    frames = [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]
    analyzers = []
    for _ in range(int(config["calls"])):
        analyzer = SileroVADAnalyzer(params=VADParams(start_secs=0.2, stop_secs=0.3))
        analyzer.set_sample_rate(8000)
        analyzers.append(analyzer)
    inline = config.get("mode") == "inline"
    loop = asyncio.get_running_loop()
    ticks = int(float(config["seconds"]) / 0.02)
    late = 0
    await asyncio.sleep(0.2)
    start_cpu, start = _cpu_s(), loop.time()
    for k in range(ticks):
        delay = start + k * 0.02 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.02:
            late += 1
        if inline:  # the model scored on the loop, without pipecat's thread hop per frame
            for i, a in enumerate(analyzers):
                a._run_analyzer(frames[(k + i * 37) % len(frames)])
        else:
            await asyncio.gather(
                *(a.analyze_audio(frames[(k + i * 37) % len(frames)])
                  for i, a in enumerate(analyzers))
            )  # fmt: skip
    return {"cpu_s": _cpu_s() - start_cpu, "late_ticks": late, "ticks": ticks}


if __name__ == "__main__":
    logger.remove()
    print(json.dumps(asyncio.run(_run(json.loads(sys.argv[1])))))
