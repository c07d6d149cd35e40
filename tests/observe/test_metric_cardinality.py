"""Fifty short calls through the real gateway add no series to any service's /metrics.

Every series label must be bounded (provider, reason, engine, subject pattern): a label
holding a call id, tenant-unbounded value or reply inbox would grow with every call.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.observe.calls import place_calls, scrape_all, series
from voicebus.devkit.stack import DevStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

WARMUP_CALLS = 5
CALLS = 45
SLACK = 10
"""Series a bounded label value seen first after the warm-up may add per service (a first
handler error adds four: its status and exception type, each with a ``_created`` twin).
A label per call would add at least one series for each of the 45 calls after it."""


async def test_series_stay_flat_over_fifty_calls(stack: DevStack) -> None:
    first_ids = await place_calls(stack, WARMUP_CALLS)
    await asyncio.sleep(3.0)  # call.ended reaches audit, recorder, orchestrator
    before = await scrape_all(stack)
    ids = first_ids + await place_calls(stack, CALLS)
    await asyncio.sleep(3.0)
    after = await scrape_all(stack)

    assert len(set(ids)) == WARMUP_CALLS + CALLS
    for name, text in after.items():
        leaked = [i for i in ids if i in text]
        assert leaked == [], f"{name} exposes call ids in /metrics: {leaked[:3]}"
        grown = series(text) - series(before[name])
        assert len(grown) <= SLACK, f"{name} grew by {len(grown)} series: {sorted(grown)[:10]}"
