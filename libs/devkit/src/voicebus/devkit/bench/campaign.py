"""``voicebus bench campaign``: dial decisions per second of a 100,000-contact campaign.

The campaigns service runs as its own process on embedded NATS and
PostgreSQL. 100,000 London numbers are uploaded through the service's
chunked upload (5 % of them on the tenant's do-not-call list), the campaign
is started with a concurrency cap of 1,000, and a simulated provider answers
every dial at once with a busy signal (no retry), so each contact gets one
decision: blocked, or checked, claimed, dialed and ended. Measured: decisions
per second from the first decision to the last, the service's CPU per 1,000
decisions, and its resident memory through the run (peak and samples), which
should stay flat whatever the number of contacts. Exactly once is checked on
the way: every eligible number dialed once, no call id received twice.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg
import psutil  # type: ignore[import-untyped]  # ships no type marker

from voicebus.contracts import campaigns as api
from voicebus.devkit.bench.harness import connect, pid_of, stack
from voicebus.devkit.bench.registry import BenchOptions, register
from voicebus.devkit.bench.report import Curve, Report
from voicebus.devkit.campaign.client import CampaignClient
from voicebus.devkit.campaign.simulator import Callee, SimulatedProvider

GOAL = 1000.0
DNC_SHARE = 20  # one number in 20 is on the do-not-call list
ENV = {
    "VB_CAMPAIGNS_TENANT_MAX_CONCURRENCY": "100000",
    "VB_CAMPAIGNS_TICK_S": "0.02",
    "VB_CAMPAIGNS_PROGRESS_INTERVAL_S": "2",
}


def _numbers(count: int) -> list[str]:
    """Valid London numbers (+44 20 7xxx xxxx)."""
    return [f"+44207{i:07d}" for i in range(count)]


def _write_csv(path: Path, numbers: list[str]) -> int:
    with path.open("w", encoding="utf-8") as out:
        out.write("phone,first_name,plan\n")
        for i, number in enumerate(numbers):
            out.write(f"{number},Person {i},gold\n")
    return path.stat().st_size


def _spec() -> api.CampaignSpec:
    all_day = {d: [api.TimeRange(start=dtime(0), end=dtime.max)] for d in api.Weekday}
    return api.CampaignSpec(
        name="bench",
        agent_id="bench",
        caller_ids=["+442079460999"],
        windows=all_day,
        concurrency=1000,
        pacing_cps=10000,
        retry=api.RetryPolicy(busy=None, no_answer=None, failed=None, machine=None),
        detect_machine=False,
    )


def _vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a process (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def _decided(db: asyncpg.Connection, campaign_id: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM campaigns.contacts WHERE campaign_id = $1 AND state <> 'pending'",
            campaign_id,
        )
    )


@register("campaign")
async def run(options: BenchOptions) -> Report:
    """Decisions per second and memory of the campaigns service on a 100,000-contact list."""
    count = 2_000 if options.quick else int(os.environ.get("VB_BENCH_CAMPAIGN_CONTACTS", "100000"))
    report = Report(
        name="campaign",
        title=f"dial decisions/s of one {count:,}-contact campaign (DNC, window, caps, claim, "
        "dial, outcome), and the campaigns service's memory",
        columns=["phase", "contacts", "seconds", "per second", "CPU ms per 1k", "RSS MB"],
        rows=[],
        summary={},
    )
    work = options.work_dir / "campaign"
    async with stack(work, ["campaigns"], ENV) as bench:
        dev = bench.dev
        assert dev.nats_url is not None
        assert dev.database_url is not None
        proc = psutil.Process(pid_of(dev, "campaigns"))
        nc = await connect(dev.nats_url)
        sim = SimulatedProvider(nc, behaviour=lambda _n: Callee.BUSY, ring_s=0.0, talk_s=0.0)
        await sim.start()
        db = await asyncpg.connect(dev.database_url)
        try:
            client = CampaignClient(nc, "bench", timeout_s=120.0)
            numbers = _numbers(count)
            blocked = numbers[::DNC_SHARE]
            for i in range(0, len(blocked), 10_000):
                await client.dnc("add", blocked[i : i + 10_000])
            csv_path = work / "contacts.csv"
            size = _write_csv(csv_path, numbers)
            campaign = await client.create(_spec())
            rss_before = round(proc.memory_info().rss / 2**20, 1)
            cpu0 = sum(proc.cpu_times()[:2])
            t0 = time.monotonic()
            upload = await client.upload_file(campaign.campaign_id, csv_path)
            upload_s = time.monotonic() - t0
            cpu1 = sum(proc.cpu_times()[:2])
            report.rows.append(
                {"phase": f"upload ({size / 2**20:.1f} MB CSV)", "contacts": upload.loaded,
                 "seconds": round(upload_s, 2), "per second": round(upload.loaded / upload_s),
                 "CPU ms per 1k": round((cpu1 - cpu0) * 1e6 / max(upload.loaded, 1), 1),
                 "RSS MB": round(proc.memory_info().rss / 2**20, 1)}
            )  # fmt: skip
            dialing = await _dial(client, db, proc, campaign.campaign_id, count, report)
            await asyncio.sleep(1.0)
        finally:
            await sim.stop()
            await db.close()
            await nc.close()
    eligible = count - len(blocked)
    dials = len(sim.dials)
    once = dials == eligible and not sim.double_dials
    rate = dialing["rate"]
    report.summary = {
        "decisions/s": round(rate),
        "goal": f">= {GOAL:,.0f} decisions/s, flat memory",
        "met": rate >= GOAL,
        "peak RSS MB": dialing["peak"],
        "RSS MB before upload": rss_before,
        "dialed once each": once,
    }
    report.notes += [
        f"{count:,} contacts, {len(blocked):,} on the DNC list; {dials:,} dials for "
        f"{eligible:,} eligible numbers; call ids received twice: {len(sim.double_dials)}.",
        "Each decision is one contact: DNC scrub, calling-window check, caps and pacing, a "
        "claimed attempt row committed before call.originate is published (Nats-Msg-Id = "
        "attempt id), then the call.ended that ends it; 4 events per dialed contact.",
        "Simulated callees are busy at once, so outcomes arrive at the dial rate: a stricter "
        "load than real calls, which hold their line for tens of seconds.",
        f"Upload: {upload.rows:,} rows read, {upload.loaded:,} loaded, "
        f"{upload.rejected} rejected, {upload.dnc:,} scrubbed at upload.",
    ]
    return report.finish()


async def _dial(
    client: CampaignClient,
    db: asyncpg.Connection,
    proc: psutil.Process,
    campaign_id: str,
    count: int,
    report: Report,
) -> dict[str, Any]:
    cpu0 = sum(proc.cpu_times()[:2])
    t0 = time.monotonic()
    await client.move("start", campaign_id)
    xs: list[float] = []
    decided: list[float] = []
    rss: list[float] = []
    first_at: float | None = None
    first_n = 0
    deadline = t0 + 1800
    n = 0
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        n = await _decided(db, campaign_id)
        now = time.monotonic() - t0
        xs.append(round(now, 2))
        decided.append(n)
        rss.append(round(proc.memory_info().rss / 2**20, 1))
        if first_at is None and n > 0:
            first_at, first_n = now, n
        done = await db.fetchval(
            "SELECT count(*) FROM campaigns.contacts WHERE campaign_id = $1 "
            "AND state IN ('done', 'dnc')",
            campaign_id,
        )
        if done == count:
            break
    elapsed = time.monotonic() - t0
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    start = first_at or 0.0
    rate = (n - first_n) / max(elapsed - start, 1e-6) if first_at is not None else 0.0
    peak = _vm_hwm_mb(proc.pid)
    report.rows.append(
        {"phase": "dial decisions", "contacts": n, "seconds": round(elapsed - start, 2),
         "per second": round(rate), "CPU ms per 1k": round(cpu * 1e6 / max(n, 1), 1),
         "RSS MB": f"{min(rss) if rss else 0}-{max(rss) if rss else 0} (peak {peak})"}
    )  # fmt: skip
    report.curves.append(Curve("contacts decided", xs, decided, "s since start", "contacts"))
    report.curves.append(Curve("campaigns RSS", xs, rss, "s since start", "MB"))
    return {"rate": rate, "peak": peak}
