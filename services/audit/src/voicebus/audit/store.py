"""Persisting events: a batch per transaction, idempotent on the event id, hash-chained per call.

One transaction per batch:

1. every call of the batch gets its ``calls`` row (``INSERT … ON CONFLICT DO
   NOTHING``), and those rows are locked ``FOR UPDATE`` in (tenant, call) order;
2. the ids already stored are looked up, so a redelivered event changes nothing;
3. the new events are linked after their call's head (:mod:`voicebus.audit.chain`)
   and inserted with one ``INSERT … SELECT FROM unnest(…)`` (their JSON as
   received; PostgreSQL takes its ``data`` member);
4. the call rows get their new status and chain head (updates folded per call:
   one statement may not touch a row twice).

Why this is safe with several audit instances: the lock on the call row in step
1 is the per-call lock. Two instances storing events of one call take turns on
it, and READ COMMITTED gives each statement after the lock a fresh snapshot, so
the second sees the first's events and head before it links its own (and skips
an event the first stored). Locking in one order keeps two batches sharing
calls from deadlocking; a deadlock PostgreSQL still detects is an outage to
retry. The unique index on (tenant, call, chain_seq) makes a fork impossible
even if this reasoning were wrong: the transaction would fail instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.audit.calls import CallStatus, call_update
from voicebus.audit.chain import CallKey, Head, Incoming, Linked, link
from voicebus.audit.models import CallEventRow, CallRow
from voicebus.contracts.events import CallEvent

EVENTS: Table = CallEventRow.__table__  # type: ignore[attr-defined]  # set by SQLModel
CALLS: Table = CallRow.__table__  # type: ignore[attr-defined]
_ORDER = [s.label for s in sorted(CallStatus)]
_CALL_COLUMNS: Final = (
    "tenant_id", "call_id", "status", "direction", "provider", "agent_id", "from_number",
    "to_number", "initiated_at", "started_at", "ended_at", "duration_s", "ended_reason",
    "updated_at", "chain_head", "chain_length",
)  # fmt: skip
"""Columns of ``calls`` in the order of :data:`_UPDATE_CALLS`' parameters."""
_ENSURE_CALLS: Final = """
INSERT INTO calls (tenant_id, call_id, status, updated_at)
SELECT t, c, 'initiated', $3 FROM unnest($1::text[], $2::text[]) AS k(t, c)
ORDER BY t, c
ON CONFLICT (tenant_id, call_id) DO NOTHING
"""
_LOCK_CALLS: Final = """
SELECT tenant_id, call_id, chain_head, chain_length FROM calls
WHERE (tenant_id, call_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
ORDER BY tenant_id, call_id
FOR UPDATE
"""
_STORED_IDS: Final = "SELECT id FROM call_events WHERE id = ANY($1::text[])"
# A column an update leaves NULL keeps its value; the later status wins whatever order
# events arrive in ($17 is the status order): a late call.ringing never rewinds an
# in-progress call, nothing reopens an ended one.
_UPDATE_CALLS: Final = """
UPDATE calls SET
    direction = coalesce(u.direction, calls.direction),
    provider = coalesce(u.provider, calls.provider),
    agent_id = coalesce(u.agent_id, calls.agent_id),
    from_number = coalesce(u.from_number, calls.from_number),
    to_number = coalesce(u.to_number, calls.to_number),
    initiated_at = coalesce(u.initiated_at, calls.initiated_at),
    started_at = coalesce(u.started_at, calls.started_at),
    ended_at = coalesce(u.ended_at, calls.ended_at),
    duration_s = coalesce(u.duration_s, calls.duration_s),
    ended_reason = coalesce(u.ended_reason, calls.ended_reason),
    status = CASE WHEN array_position($17::text[], u.status)
                       > array_position($17::text[], calls.status)
                  THEN u.status ELSE calls.status END,
    updated_at = u.updated_at,
    chain_head = coalesce(u.chain_head, calls.chain_head),
    chain_length = coalesce(u.chain_length, calls.chain_length)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[],
            $11::timestamptz[], $12::float8[], $13::text[], $14::timestamptz[],
            $15::bytea[], $16::int[])
     AS u(tenant_id, call_id, status, direction, provider, agent_id, from_number, to_number,
          initiated_at, started_at, ended_at, duration_s, ended_reason, updated_at,
          chain_head, chain_length)
WHERE calls.tenant_id = u.tenant_id AND calls.call_id = u.call_id
"""
# $8 is each event's whole JSON as received: PostgreSQL takes its ``data`` member, so the
# event body is stored as published (fields a newer version added included) and Python
# never re-serializes it.
_INSERT_EVENTS: Final = """
INSERT INTO call_events (id, tenant_id, call_id, type, source, time, stream_seq, data,
                         received_at, chain_seq, hash)
SELECT id, tenant_id, call_id, type, source, time, stream_seq, envelope -> 'data', $9,
       chain_seq, hash
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
            $7::bigint[], $8::jsonb[], $10::int[], $11::bytea[])
     AS t(id, tenant_id, call_id, type, source, time, stream_seq, envelope, chain_seq, hash)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""


_CHAIN_INDEX: Final = "call_events_chain"


class ChainConflictError(RuntimeError):
    """The chain moved under this transaction (cannot happen while calls are locked; if it
    did, the transaction is rolled back and the batch is stored again: an outage, not data
    at fault)."""


class EventStore:
    """Writes events and call rows.

    Args:
        engine: an engine on the ``audit`` schema; may be bound later with
            :meth:`bind`, once the service has connected.
    """

    def __init__(self, engine: AsyncEngine | None = None) -> None:
        self._engine = engine

    def bind(self, engine: AsyncEngine) -> None:
        """Use ``engine`` from now on."""
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """The bound engine."""
        if self._engine is None:
            raise RuntimeError("EventStore used before an engine was bound")
        return self._engine

    async def append(self, event: CallEvent, stream_seq: int | None = None) -> bool:
        """Store ``event`` and update its call; a repeated event id changes nothing.

        Returns:
            True if the event was new.
        """
        return await self.append_many([Incoming.of(event, stream_seq, event.to_bytes())]) == 1

    async def append_many(self, batch: Sequence[Incoming]) -> int:
        """Store a batch in one transaction, each new event linked into its call's chain.

        Events already stored (or repeated within the batch) change nothing.

        Returns:
            How many events were new.

        Raises:
            asyncpg.exceptions.DataError and friends: the database refused a value
                (the whole batch is rolled back; the caller splits it).
        """
        if not batch:
            return 0
        now = datetime.now(UTC)
        keys = sorted({item.key for item in batch})
        tenants, calls = [k[0] for k in keys], [k[1] for k in keys]
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            async with driver.transaction():
                await driver.execute(_ENSURE_CALLS, tenants, calls, now)
                heads = {
                    (r["tenant_id"], r["call_id"]): Head(r["chain_head"], r["chain_length"])
                    for r in await driver.fetch(_LOCK_CALLS, tenants, calls)
                }
                stored = {
                    r["id"] for r in await driver.fetch(_STORED_IDS, [i.event.id for i in batch])
                }
                new = _first_of_each(batch, stored)
                if not new:
                    return 0
                linked, moved = link(new, heads)
                seqs, hashes = [x.seq for x in linked], [x.hash for x in linked]
                columns = _event_columns(linked)
                try:
                    inserted = await driver.fetch(_INSERT_EVENTS, *columns, now, seqs, hashes)
                except asyncpg.exceptions.UniqueViolationError as err:
                    if err.constraint_name == _CHAIN_INDEX:
                        raise ChainConflictError("a link was stored by someone else") from err
                    raise
                if len(inserted) != len(linked):
                    raise ChainConflictError("an event was stored by someone else meanwhile")
                updates = fold_call_updates(call_update(i.event) for i in new)
                await driver.execute(_UPDATE_CALLS, *_call_columns(updates, moved, now), _ORDER)
        return len(linked)


def _event_columns(linked: Sequence[Linked]) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(8)]
    for x in linked:
        e = x.item.event
        row = (e.id, e.tenant_id, e.call_id, e.type, e.source, e.time, x.item.stream_seq,
               x.item.envelope)  # fmt: skip
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


def _first_of_each(batch: Sequence[Incoming], stored: set[str]) -> list[Incoming]:
    """The batch's events not yet stored, each id once, in batch order."""
    seen = set(stored)
    out = []
    for item in batch:
        event_id = item.event.id
        if event_id not in seen:
            seen.add(event_id)
            out.append(item)
    return out


def fold_call_updates(updates: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge the call updates of one batch into one update per call, in event order.

    The same rules as between batches: a value set by a later event wins, a
    ``None`` leaves the column as it was, and the status only moves forward.
    """
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for update in updates:
        key = (update["tenant_id"], update["call_id"])
        current = merged.setdefault(key, {})
        for name, value in update.items():
            if name == "status":
                old = current.get("status")
                current["status"] = value if old is None else max(old, value)
            elif value is not None:
                current[name] = value
    return [{**u, "status": u.get("status", CallStatus.INITIATED)} for u in merged.values()]


def _call_columns(
    updates: list[dict[str, Any]], heads: dict[CallKey, Head], now: datetime
) -> list[list[Any]]:
    """The folded updates and new chain heads as one array per column of :data:`_CALL_COLUMNS`."""
    columns: list[list[Any]] = [[] for _ in _CALL_COLUMNS]
    for update in updates:
        head = heads.get((update["tenant_id"], update["call_id"]))
        values = {**update, "status": update["status"].label, "updated_at": now}
        if head is not None:
            values |= {"chain_head": head.hash, "chain_length": head.length}
        for column, name in zip(columns, _CALL_COLUMNS, strict=True):
            column.append(values.get(name))
    return columns
