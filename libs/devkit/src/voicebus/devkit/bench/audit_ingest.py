"""``audit-ingest``: events per second the audit service persists exactly once.

The events of many calls (``call.started``, six ``transcript.final``,
``call.ended``) are published to ``VB_EVENTS`` before audit starts, plus 1 %
of them a second time without a message id (as a publisher retrying after a
lost ack would, past the stream's dedup window), so audit has to catch up on
a backlog and drop the repeats itself. Measured from the first row stored to the
last row stored (from the first row seen to the last, polled every 50 ms);
then every event must be there exactly once. Baseline: raw
asyncpg ``COPY`` of the same rows into a table of the same shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.bench.harness import CpuWindow, Profiler, connect, pid_of, stack
from voicebus.devkit.bench.registry import BenchOptions, register
from voicebus.devkit.bench.report import Curve, Report, ratio
from voicebus.devkit.stack import DevStack
from voicebus.runtime.provision import provision

GOAL_EVENTS_PER_S = 20_000
_Event = CallStarted | TranscriptFinal | CallEnded
PER_CALL = 8


def _call_events(tenant: str) -> list[_Event]:
    call_id = new_id()
    env: dict[str, Any] = {"tenant_id": tenant, "call_id": call_id, "source": "bench/1"}
    events: list[_Event] = [
        CallStarted(
            **env,
            data=CallStartedData(
                direction=Direction.INBOUND,
                provider="twilio",
                agent_id="bench",
                gateway_instance="gw",
                from_number="+15005550006",
            ),
        )
    ]
    for turn in range(PER_CALL - 2):
        data = TranscriptFinalData(utterance_id=f"u{turn}", text="where is my order one two three",
                                   start_ms=turn * 4000, end_ms=turn * 4000 + 1800)  # fmt: skip
        events.append(TranscriptFinal(**env, data=data))
    events.append(CallEnded(**env, data=CallEndedData(reason=EndReason.CALLER_HANGUP,
                                                      duration_s=30.0)))  # fmt: skip
    return events


async def _publish(nats_url: str, events: list[_Event]) -> tuple[int, float]:
    """Publish every event (with its id) and 1 % again without; count and seconds."""
    nc = await connect(nats_url)
    js = nc.jetstream()
    await provision(js)
    started = time.monotonic()
    repeats = events[:: max(len(events) // (len(events) // 100 or 1), 1)][: len(events) // 100]
    chunk = 500
    for i in range(0, len(events), chunk):
        await asyncio.gather(
            *(js.publish(e.subject, e.to_bytes(), headers={"Nats-Msg-Id": e.id})
              for e in events[i : i + chunk])
        )  # fmt: skip
    await asyncio.gather(*(js.publish(e.subject, e.to_bytes()) for e in repeats))
    seconds = time.monotonic() - started
    await nc.drain()
    return len(events) + len(repeats), seconds


async def _stored(conn: asyncpg.Connection) -> tuple[int, int]:
    row = await conn.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT id) AS d FROM audit.call_events"
    )
    return int(row["n"]), int(row["d"])


class _Progress:
    """Rows stored over time, polled from before audit starts until all are there."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.first: tuple[float, int] | None = None
        self.done: float | None = None
        self.cpu: CpuWindow | None = None

    async def watch(self, database_url: str, audit: DevStack, timeout: float) -> None:
        conn = await asyncpg.connect(database_url)
        origin = time.monotonic()
        try:
            while time.monotonic() < origin + timeout:
                n = 0
                with contextlib.suppress(asyncpg.UndefinedTableError):
                    n, _ = await _stored(conn)
                now = time.monotonic()
                if n and self.first is None:
                    self.first = (now, n)
                    self.cpu = CpuWindow({"audit": pid_of(audit, "audit")})
                if self.first is not None:
                    self.xs.append(round(now - self.first[0], 3))
                    self.ys.append(n)
                if n >= self.total:
                    self.done = now
                    return
                await asyncio.sleep(0.05)
        finally:
            await conn.close()


async def _audit(
    dev: DevStack, total: int, options: BenchOptions, report: Report
) -> dict[str, Any]:
    assert dev.nats_url is not None
    assert dev.database_url is not None
    log = (dev.data_dir / "audit.log").open("w")
    audit = DevStack(dev.data_dir / "audit", nats_url=dev.nats_url,
                     database_url=dev.database_url, services=["audit"], out=log,
                     local_llm=False, env={"VB_LOG_LEVEL": "WARNING"})  # fmt: skip
    progress = _Progress(total)
    watcher = asyncio.create_task(progress.watch(dev.database_url, audit, 240.0))
    try:
        await audit.start(ready_timeout=120.0)
        profiler = None
        if options.profile:
            out = options.out_dir / "audit-ingest.audit.pyspy.txt"
            profiler = Profiler(pid_of(audit, "audit"), 8, out)
        await watcher
        if progress.first is None or progress.done is None:
            raise RuntimeError(f"audit stored {progress.ys[-1:] or 0} of {total} events in time")
        used = progress.cpu.used()["audit"] if progress.cpu else 0.0
        await asyncio.sleep(1.0)  # anything stored twice would show up now
        conn = await asyncpg.connect(dev.database_url)
        try:
            n, d = await _stored(conn)
            calls = await conn.fetchval("SELECT count(*) FROM audit.calls WHERE status = 'ended'")
        finally:
            await conn.close()
        if profiler is not None:
            report.notes.append("audit py-spy: " + "; ".join(await profiler.summary(10)))
        report.curves.append(
            Curve("events stored", progress.xs, progress.ys, "s since the first row", "events")
        )
        first_at, first_n = progress.first
        return {"seconds": progress.done - first_at, "counted": total - first_n, "rows": n,
                "distinct": d, "ended calls": calls, "cpu_s": used}  # fmt: skip
    finally:
        watcher.cancel()
        await audit.stop()
        log.close()


async def _copy_baseline(database_url: str, events: list[_Event]) -> float:
    now = datetime.now(UTC)
    rows = [(e.id, e.tenant_id, e.call_id, e.type, e.source, e.time, i,
             e.data.model_dump_json(), now) for i, e in enumerate(events, 1)]  # fmt: skip
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "CREATE TABLE bench_copy (id text PRIMARY KEY, tenant_id text NOT NULL, "
            "call_id text NOT NULL, type text NOT NULL, source text NOT NULL, "
            "time timestamptz NOT NULL, stream_seq bigint, data jsonb NOT NULL, "
            "received_at timestamptz NOT NULL)"
        )
        await conn.execute("CREATE INDEX ON bench_copy (tenant_id, call_id, time)")
        started = time.monotonic()
        await conn.copy_records_to_table("bench_copy", records=rows)
        return time.monotonic() - started
    finally:
        await conn.close()


@register("audit-ingest")
async def run(options: BenchOptions) -> Report:
    """Backlog catch-up rate of audit, exactly once, against COPY of the same rows."""
    calls = 60 if options.quick else 6000
    report = Report(
        name="audit-ingest",
        title="events/s persisted exactly once by audit (backlog catch-up), vs raw asyncpg "
        "COPY of the same rows",
        columns=["path", "events", "seconds", "events/s", "CPU ms per 1k events", "exactly once"],
        rows=[],
        summary={},
    )
    events = [e for _ in range(calls) for e in _call_events("bench")]
    async with stack(options.work_dir / "audit-ingest", []) as bench:
        dev = bench.dev
        assert dev.nats_url is not None
        assert dev.database_url is not None
        published, pub_s = await _publish(dev.nats_url, events)
        ours = await _audit(dev, len(events), options, report)
        copy_s = await _copy_baseline(dev.database_url, events)
    rate = ours["counted"] / ours["seconds"] if ours["seconds"] > 0 else None
    copy_rate = len(events) / copy_s if copy_s > 0 else None
    once = ours["rows"] == len(events) == ours["distinct"] and ours["ended calls"] == calls
    report.rows = [
        {"path": "raw asyncpg COPY", "events": len(events), "seconds": round(copy_s, 3),
         "events/s": round(copy_rate or 0), "exactly once": "n/a"},
        {"path": "voicebus audit", "events": len(events), "seconds": round(ours["seconds"], 3),
         "events/s": round(rate or 0),
         "CPU ms per 1k events": round(ours["cpu_s"] * 1e6 / max(ours["counted"], 1), 1),
         "exactly once": once},
    ]  # fmt: skip
    report.summary = {
        "audit events/s": round(rate or 0),
        "COPY events/s": round(copy_rate or 0),
        "ratio": ratio(rate, copy_rate),
        "exactly once": once,
        "messages on the stream (1 % repeated)": published,
        "rows stored": ours["rows"],
        "goal": f"≥ {GOAL_EVENTS_PER_S:,} events/s",
        "met": bool(rate and rate >= GOAL_EVENTS_PER_S),
    }
    report.notes.append(f"published the backlog in {pub_s:.1f} s before audit started")
    return report.finish()
