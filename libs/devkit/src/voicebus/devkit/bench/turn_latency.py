"""``turn-latency``: end of the caller's speech → first agent audio at the caller, through
(a) the whole voicebus stack and (b) one process with the same engines, per stage.

(a) gateway, media and orchestrator run as deployed; a simulated Twilio caller
phones the ``demo-scripted`` agent (whisper-local STT, the scripted LLM, hibari
TTS) and speaks the lines at real time; stages come from the call's events as
this process receives them: VAD stop (``speech.user.stopped``), STT final
(``transcript.final``), LLM first token (``agent.reply``'s
``llm_first_token_ms``), TTS first audio (``agent.speech.started``'s
``first_audio_ms``); what remains is bus hops, pacing and playout.
(b) :mod:`voicebus.devkit.bench.single_process` on the same audio.

Turns must not end early: the caller also says a line with a 600 ms pause in the
middle ("The order number is … 1234."), which must come back as one transcript
(smart turn keeps the turn open over the pause); its latency is reported apart.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from statistics import median
from typing import Any

from nats.aio.msg import Msg

from voicebus.contracts import subjects
from voicebus.devkit.bench.harness import connect, stack, url_of
from voicebus.devkit.bench.registry import BenchOptions, register
from voicebus.devkit.bench.report import Report, Series, ratio
from voicebus.devkit.bench.single_process import (
    SingleProcessAgent,
    Stages,
    first_audible,
    last_audible,
)
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.engines.tts.hibari import HibariTTS

AGENT = "demo-scripted"
AGENT_FILE = Path("agents") / f"{AGENT}.yaml"
LINES = ("Where is my order 1234?", "Thanks a lot.")
PAUSED = ("The order number is", "1234.")
PAUSE_MS = 600
GOAL_MS = 700
GOAL = f"median ≤ {GOAL_MS} ms (end of speech → first agent audio), no turn ended early"
STAGES = ("vad_stop_ms", "stt_ms", "llm_first_token_ms", "tts_first_audio_ms", "rest_ms")
SPLITS = ("transcript_to_audio_out_ms", "audio_out_to_heard_ms")
"""(a) only: transcript received → ``agent.speech.started`` received (orchestrator + media),
and → the caller hearing it (gateway + the caller's playout)."""


class _Events:
    """Every event of the stack, with the time this process received it."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, dict[str, Any]]] = []

    def all(self, call_id: str, kind: str, after: float) -> list[dict[str, Any]]:
        return [
            event
            for at, event in self.seen
            if at >= after and event["call_id"] == call_id and event["type"].startswith(kind)
        ]

    async def on_event(self, msg: Msg) -> None:
        self.seen.append((time.monotonic(), json.loads(msg.data)))

    def first(self, call_id: str, kind: str, after: float) -> tuple[float, dict[str, Any]] | None:
        for at, event in self.seen:
            if at >= after and event["call_id"] == call_id and event["type"].startswith(kind):
                return at, event
        return None


async def _voicebus(options: BenchOptions, pcms: list[bytes], paused: bytes, repeats: int
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    from voicebus.devkit.caller import TwilioCaller

    turns: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    async with stack(options.work_dir / "turn-latency", ["gateway", "media", "orchestrator"],
                     {"VB_LOG_LEVEL": "WARNING"}) as bench:  # fmt: skip
        assert bench.dev.nats_url is not None
        nc = await connect(bench.dev.nats_url)
        events = _Events()
        await nc.subscribe(subjects.evt_filter(), cb=events.on_event)
        caller = TwilioCaller(url_of(bench.dev, "gateway"), DEV_TWILIO_AUTH_TOKEN, AGENT)
        await caller.start()
        origin = time.monotonic()  # the caller's stream clock starts now (±20 ms)
        try:
            if not await caller.wait_for_agent_silence(1200, timeout=60):
                raise RuntimeError("no greeting from the agent")
            for i in range(repeats * len(pcms)):
                said_at = time.monotonic()
                turn = await caller.say_pcm(pcms[i % len(pcms)], text=LINES[i % len(LINES)])
                await caller.wait_for_agent_silence(1200, timeout=60)
                turns.append(_stages(events, caller.call_id or "", turn, origin, said_at))
            for _ in range(repeats):
                said_at = time.monotonic()
                turn = await caller.say_pcm(paused, text=" ".join(PAUSED))
                await caller.wait_for_agent_silence(1200, timeout=60)
                stages = _stages(events, caller.call_id or "", turn, origin, said_at)
                finals = events.all(caller.call_id or "", "transcript.final", said_at)
                stages["transcripts"] = [f["data"]["text"] for f in finals]
                held.append(stages)
        finally:
            await caller.hang_up()
            await nc.drain()
    return turns, held


def _paused_line(first: bytes, second: bytes, pause_ms: int = PAUSE_MS) -> bytes:
    """Two synthesized pieces with exactly ``pause_ms`` between their audible samples."""
    end = (last_audible(first) + 1) * 2
    start = (first_audible(second) or 0) * 2
    return first[:end] + bytes(8 * pause_ms * 2) + second[start:]


def _cut_early(turn: dict[str, Any]) -> bool:
    """The paused line came back as more than one transcript, or without its end."""
    texts = turn.get("transcripts") or []
    return len(texts) != 1 or "1234" not in texts[0].replace(" ", "")


def _stages(events: _Events, call_id: str, turn: Any, origin: float, said_at: float
            ) -> dict[str, Any]:  # fmt: skip
    total = turn.latency_ms
    end_at = origin + (turn.ended_ms or 0) / 1000
    vad = events.first(call_id, "speech.user.stopped", said_at)
    stt = events.first(call_id, "transcript.final", said_at)
    reply = events.first(call_id, "agent.reply", said_at)
    speech = events.first(call_id, "agent.speech.started", said_at)
    out: dict[str, Any] = {"total_ms": total}
    if vad and stt:
        out["vad_stop_ms"] = (vad[0] - end_at) * 1000
        out["stt_ms"] = (stt[0] - vad[0]) * 1000
    if reply:
        out["llm_first_token_ms"] = reply[1]["data"].get("llm_first_token_ms")
    if speech:
        out["tts_first_audio_ms"] = speech[1]["data"].get("first_audio_ms")
    if stt and speech:
        out["transcript_to_audio_out_ms"] = (speech[0] - stt[0]) * 1000
    if speech and turn.first_agent_audio_ms is not None:
        heard_at = origin + turn.first_agent_audio_ms / 1000
        out["audio_out_to_heard_ms"] = (heard_at - speech[0]) * 1000
    known = [out.get(k) for k in STAGES[:-1]]
    if total is not None and all(v is not None for v in known):
        out["rest_ms"] = total - sum(v for v in known if v is not None)
    return out


def _without_stt(turns: list[dict[str, Any]]) -> float | None:
    """Median of each turn's latency less its STT time: whisper's time swings with the CPU
    left by others, the rest is what the bus adds or not."""
    values = [t["total_ms"] - t["stt_ms"] for t in turns if t.get("total_ms") and t.get("stt_ms")]
    return round(median(values), 1) if values else None


def _single(stages: Stages) -> dict[str, Any]:
    return {"total_ms": stages.total_ms, "vad_stop_ms": stages.vad_stop_ms,
            "stt_ms": stages.stt_ms, "llm_first_token_ms": stages.llm_first_token_ms,
            "tts_first_audio_ms": stages.tts_first_audio_ms,
            "rest_ms": stages.total_ms - stages.vad_stop_ms - stages.stt_ms
            - stages.llm_first_token_ms - stages.tts_first_audio_ms}  # fmt: skip


def _median_row(path: str, turns: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"path": path, "turns": len(turns)}
    for key in ("total_ms", *STAGES, *SPLITS):
        values = [t[key] for t in turns if t.get(key) is not None]
        row[key.removesuffix("_ms") + " ms"] = round(median(values), 1) if values else None
    return row


@register("turn-latency")
async def run(options: BenchOptions) -> Report:
    """The same caller lines through both; median per stage and the ratio (b)/(a)."""
    repeats = 1 if options.quick else 4
    report = Report(
        name="turn-latency",
        title="end of caller speech → first agent audio: (a) voicebus stack vs (b) one process "
        "with the same engines (median per stage)",
        columns=[
            "path",
            "turns",
            "total ms",
            *(s.removesuffix("_ms") + " ms" for s in (*STAGES, *SPLITS)),
        ],
        rows=[],
        summary={},
    )
    tts = HibariTTS()
    pcms = [b"".join([c async for c in tts.synthesize(line, 8000)]) for line in LINES]
    agent = SingleProcessAgent(AGENT_FILE)
    await agent.warm()
    single = []
    for i in range(repeats * len(pcms)):
        stages = await agent.turn(pcms[i % len(pcms)])
        if stages is not None:
            single.append(_single(stages))
    halves = [b"".join([c async for c in tts.synthesize(text, 8000)]) for text in PAUSED]
    ours, held = await _voicebus(options, pcms, _paused_line(halves[0], halves[1]), repeats)
    a, b = _median_row("(a) voicebus stack", ours), _median_row("(b) single process", single)
    paused = _median_row(f"(a) line with a {PAUSE_MS} ms pause", held)
    early = sum(_cut_early(t) for t in held)
    paused["path"] += f", cut early {early}/{len(held)}"
    report.rows = [a, b, paused]
    report.series = [
        Series("(a) voicebus", [t["total_ms"] for t in ours if t.get("total_ms") is not None]),
        Series("(b) single process", [t["total_ms"] for t in single]),
    ]
    a_rest, b_rest = _without_stt(ours), _without_stt(single)
    report.summary = {
        "(a) voicebus median ms": a["total ms"],
        "(a) median without STT time ms": a_rest,
        "(b) single-process median ms": b["total ms"],
        "(b) median without STT time ms": b_rest,
        "ratio (b)/(a)": ratio(b["total ms"], a["total ms"]),
        f"turns cut at a {PAUSE_MS} ms mid-sentence pause": f"{early}/{len(held)}",
        "transcripts of the paused line": [t.get("transcripts") for t in held],
        "goal": GOAL,
        "met": bool(a["total ms"] and a["total ms"] <= GOAL_MS and held and not early),
        "gap to goal ms": round(a["total ms"] - GOAL_MS, 1) if a["total ms"] else None,
    }
    report.notes.append(
        "Both are timed from the caller's last audible sample to the reply's first audible "
        "sample: (a) at the simulated caller (20 ms playout ticks), (b) with the synthesized "
        "audio played at real time from its first chunk. (a) runs the agent as configured: "
        "smart turn after 200 ms of silence, the voice's leading silence cut to 20 ms; (b) "
        "is pipecat's Silero VAD ending the turn after 300 ms and the voice as synthesized. "
        "'rest' is what the stages leave: the voice's leading silence, bus hops, media's "
        "pacing and the caller's playout. VAD stop in (a) includes the smart-turn check and "
        "one bus hop to this process."
    )
    return report.finish()
