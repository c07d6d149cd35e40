"""Erasing personal data from audit's store while keeping every chain verifiable.

An erased event keeps its row, its place and its hash (``chain_seq``, ``hash``): only
its ``data`` becomes :data:`TOMBSTONE` and ``erased_at`` is set. Its call keeps its
chain head; its ``from_number``/``to_number`` are cleared. ``voicebus audit verify``
takes an erased link's stored hash as its value (see
:mod:`voicebus.contracts.evidence`), so the other links are still recomputed.

Each erasure runs in one transaction that first locks the calls' rows in key order —
the lock the event store takes before it links new events — so an erasure and a
batch being stored take turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

TOMBSTONE: Final = {"erased": True}
"""What an erased event's ``data`` holds (written literally in the statements)."""

_CALLS_OF_NUMBER: Final = """
SELECT call_id FROM calls WHERE tenant_id = $1 AND (from_number = $2 OR to_number = $2)
UNION
SELECT DISTINCT call_id FROM call_events
WHERE tenant_id = $1 AND erased_at IS NULL
  AND (data ->> 'from_number' = $2 OR data ->> 'to_number' = $2)
"""
_LOCK: Final = """
SELECT call_id FROM calls WHERE tenant_id = $1 AND call_id = ANY($2::text[])
ORDER BY tenant_id, call_id FOR UPDATE
"""
_ERASE_EVENTS: Final = """
UPDATE call_events SET data = '{"erased": true}'::jsonb, erased_at = $3
WHERE tenant_id = $1 AND call_id = ANY($2::text[]) AND erased_at IS NULL
"""
_CLEAR_NUMBERS: Final = """
UPDATE calls SET from_number = NULL, to_number = NULL
WHERE tenant_id = $1 AND call_id = ANY($2::text[])
"""


@dataclass(frozen=True, slots=True)
class Erased:
    """What one erasure changed."""

    call_ids: list[str]
    events: int


def _count(status: str) -> int:
    """Rows of an ``UPDATE n`` status."""
    return int(status.rsplit(" ", 1)[-1])


async def erase_number(engine: AsyncEngine, tenant_id: str, number: str, now: datetime) -> Erased:
    """Erase every call of ``tenant_id`` where ``number`` called or was called.

    Idempotent: an event already erased is not counted again.
    """
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        async with driver.transaction():
            found = await driver.fetch(_CALLS_OF_NUMBER, tenant_id, number)
            call_ids = sorted(r["call_id"] for r in found)
            if not call_ids:
                return Erased([], 0)
            await driver.fetch(_LOCK, tenant_id, call_ids)
            events = _count(await driver.execute(_ERASE_EVENTS, tenant_id, call_ids, now))
            await driver.execute(_CLEAR_NUMBERS, tenant_id, call_ids)
    return Erased(call_ids, events)


_BATCH: Final = 5000
_EXPIRE_EVENTS: Final = """
UPDATE call_events SET data = '{"erased": true}'::jsonb, erased_at = $5
WHERE id IN (
    SELECT id FROM call_events
    WHERE tenant_id = $1 AND time < $2 AND erased_at IS NULL
      AND ($3::text[] IS NULL OR type = ANY($3::text[]))
    LIMIT $4
)
"""
_EXPIRE_NUMBERS: Final = """
UPDATE calls SET from_number = NULL, to_number = NULL
WHERE tenant_id = $1 AND coalesce(ended_at, started_at, initiated_at, updated_at) < $2
  AND (from_number IS NOT NULL OR to_number IS NOT NULL)
"""


async def expire(
    engine: AsyncEngine,
    tenant_id: str,
    before: datetime,
    now: datetime,
    types: tuple[str, ...] | None = None,
) -> tuple[int, int]:
    """Erase ``tenant_id``'s events older than ``before`` (only ``types`` when given).

    In batches, each its own transaction, so a large backlog never holds one long
    transaction; an erasure changes no chain column, so batches need no call lock.
    Without ``types``, calls that ended (or began, if no end is known) before ``before``
    also lose their numbers.

    Returns:
        Events erased, and calls whose numbers were cleared.
    """
    events = 0
    kinds = list(types) if types is not None else None
    while True:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            status = await driver.execute(_EXPIRE_EVENTS, tenant_id, before, kinds, _BATCH, now)
        done = _count(status)
        events += done
        if done < _BATCH:
            break
    calls = 0
    if types is None:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            calls = _count(await driver.execute(_EXPIRE_NUMBERS, tenant_id, before))
    return events, calls
