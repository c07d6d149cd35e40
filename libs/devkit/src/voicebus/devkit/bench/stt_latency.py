"""``stt-latency``: end of the caller's turn → final transcript, incremental vs batch whisper.

The same clips (lines spoken by the local hibari voice, through an 8 kHz phone line)
go to ``whisper-local`` two ways:

- incremental: a session fed 20 ms frames in real time, then 300 ms of silence
  (the turn detector's default stop silence); the clock starts when the turn is
  closed, as media's ``stt_latency_ms`` does;
- batch (baseline): the whole turn transcribed at that same moment (faster-whisper's
  own path, 30 s windows), as media did before sessions.

Word error rate of both against the lines' text. tiny.en and base, each alone.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from typing import Final

import numpy as np

from voicebus.devkit.bench.registry import BenchOptions, register
from voicebus.devkit.bench.report import Report, Series, percentiles
from voicebus.devkit.caller.audio import FRAME_BYTES, SAMPLE_RATE, silence
from voicebus.engines.stt.whisper_local import WhisperLocalSTT
from voicebus.engines.tts.hibari import HibariTTS

GOAL_MS: Final = 150.0
STOP_MS: Final = 300
CLIPS: Final = (
    "Hi there, where is my order?",
    "I would like to change my delivery address please.",
    "Can you tell me when the package will arrive?",
    "My name is Ada and I am calling about a refund.",
    "The parcel came yesterday but the box was damaged.",
    "Could you send me a new invoice by email?",
    "I need to cancel the second item in my basket.",
    "Thanks, that is all I needed today.",
)


def words(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return re.findall(r"[a-z0-9']+", text.lower())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference's length."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / max(len(ref), 1)


async def _clip(tts: HibariTTS, text: str) -> bytes:
    from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16

    pcm = b"".join([c async for c in tts.synthesize(text, SAMPLE_RATE)])
    return ulaw_to_pcm16(pcm16_to_ulaw(pcm))  # through the phone line


async def _incremental(engine: WhisperLocalSTT, pcm: bytes) -> tuple[float, str]:
    session = await engine.open(SAMPLE_RATE)
    audio = pcm + silence(STOP_MS)
    start = time.monotonic()
    for index, offset in enumerate(range(0, len(audio), FRAME_BYTES)):
        session.push(audio[offset : offset + FRAME_BYTES])
        await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - time.monotonic()))
    closed = time.monotonic()
    final = await session.end_turn()
    latency = (time.monotonic() - closed) * 1000
    await session.aclose()
    return latency, final.text


async def _batch(engine: WhisperLocalSTT, pcm: bytes) -> tuple[float, str]:
    start = time.monotonic()
    result = await engine.transcribe(pcm + silence(STOP_MS), SAMPLE_RATE)
    return (time.monotonic() - start) * 1000, result.text


@register("stt-latency")
async def run(options: BenchOptions) -> Report:
    """Incremental vs batch local whisper on the same clips."""
    report = Report(
        name="stt-latency",
        title="end of turn → final transcript: whisper-local incremental session vs batch "
        "(same clips, 8 kHz μ-law)",
        columns=["model", "path", "clips", "median ms", "p95 ms", "WER"],
        rows=[],
        summary={},
    )
    tts = HibariTTS()
    await tts.warm()
    texts = CLIPS[:2] if options.quick else CLIPS
    clips = [await _clip(tts, text) for text in texts]
    seconds = [len(c) / 2 / SAMPLE_RATE for c in clips]
    for model in ("tiny.en",) if options.quick else ("tiny.en", "base"):
        engine = WhisperLocalSTT(language="en", model=model)
        await engine.warm()
        await _incremental(engine, clips[0])  # warm the decoder path
        for path, fn in (("incremental", _incremental), ("batch", _batch)):
            latencies, errors = [], []
            for text, clip in zip(texts, clips, strict=True):
                latency, heard = await fn(engine, clip)
                latencies.append(latency)
                errors.append(wer(text, heard))
                if text == texts[0]:
                    report.notes.append(f"{model} {path} heard {heard!r} for {text!r}")
            p = percentiles(latencies, (50.0, 95.0))
            report.rows.append({
                "model": model, "path": path, "clips": len(clips), "median ms": p["p50"],
                "p95 ms": p["p95"], "WER": round(statistics.fmean(errors), 3),
            })  # fmt: skip
            report.series.append(Series(f"{model} {path}", latencies))
    incremental = [r for r in report.rows if r["path"] == "incremental"]
    best = min(incremental, key=lambda r: r["median ms"] or 1e9)
    report.summary = {
        "incremental median ms (tiny.en)": incremental[0]["median ms"],
        "incremental p95 ms (tiny.en)": incremental[0]["p95 ms"],
        "batch median ms (tiny.en)": report.rows[1]["median ms"],
        "clip length s (mean)": round(float(np.mean(seconds)), 2),
        "goal": f"≤ {GOAL_MS:.0f} ms median after end of turn",
        "met": bool(best["median ms"] is not None and best["median ms"] <= GOAL_MS),
    }
    report.notes.append(
        "clock starts when the turn closes (300 ms of silence after the last word, the turn "
        "detector's default), the same origin as transcript.final's stt_latency_ms"
    )
    return report.finish()
