"""Recomputing calls' hash chains from their stored rows (``voicebus audit verify``).

The rows are read as stored (``data`` as ``jsonb`` text, ``time`` as stored) and
hashed by :mod:`voicebus.contracts.evidence`, independently of how they were
written: a row changed by hand (an ``UPDATE``), removed, or moved shows as the
first link whose hash no longer matches. An erased row (its ``data`` a tombstone)
counts as erased and its stored hash stands for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.contracts import evidence
from voicebus.contracts.chains import ChainResult

_LINKS: Final = """
SELECT chain_seq, hash, id, type, source, time, tenant_id, call_id, data::text AS data,
       erased_at IS NOT NULL AS erased
FROM call_events WHERE tenant_id = $1 AND call_id = $2 AND chain_seq IS NOT NULL
ORDER BY chain_seq
"""
_UNCHAINED: Final = (
    "SELECT count(*) FROM call_events WHERE tenant_id = $1 AND call_id = $2 AND chain_seq IS NULL"
)
_HEAD: Final = "SELECT chain_head, chain_length FROM calls WHERE tenant_id = $1 AND call_id = $2"
_SINCE: Final = """
SELECT call_id FROM calls WHERE tenant_id = $1 AND updated_at >= $2 AND call_id > $3
ORDER BY call_id LIMIT $4
"""


def _stored(row: Any) -> evidence.StoredLink:
    try:
        data = evidence.load(row["data"])
    except evidence.CanonicalFormError:
        data = None  # unreachable for jsonb; the hash then simply does not match
    link = evidence.Link(
        row["id"], row["type"], row["source"], row["time"], row["tenant_id"], row["call_id"], data
    )
    return evidence.StoredLink(row["chain_seq"], row["hash"], link, row["erased"])


async def verify_call(engine: AsyncEngine, tenant_id: str, call_id: str) -> ChainResult | None:
    """Recompute one call's chain; None if the tenant has no such call."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        async with driver.transaction(isolation="repeatable_read", readonly=True):
            head = await driver.fetchrow(_HEAD, tenant_id, call_id)
            if head is None:
                return None
            rows = await driver.fetch(_LINKS, tenant_id, call_id)
            unchained = await driver.fetchval(_UNCHAINED, tenant_id, call_id)
    verdict = evidence.verify(
        tenant_id, call_id, (_stored(r) for r in rows), head["chain_head"], head["chain_length"]
    )
    return ChainResult(
        call_id=call_id,
        ok=verdict.ok,
        length=verdict.length,
        head=verdict.head.hex(),
        broken_at=verdict.broken_at,
        event_id=verdict.event_id,
        problem=verdict.problem,
        unchained=unchained,
        erased=verdict.erased,
    )


async def calls_since(
    engine: AsyncEngine, tenant_id: str, since: datetime, after: str | None, limit: int
) -> list[str]:
    """Ids of the tenant's calls with events stored since ``since``, after ``after``."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        rows = await driver.fetch(_SINCE, tenant_id, since, after or "", limit)
    return [r["call_id"] for r in rows]
