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
