"""Persisting events: a batch per transaction, idempotent on the event id.

Events are inserted with one ``INSERT … SELECT FROM unnest(…) ON CONFLICT (id)
DO NOTHING RETURNING id`` per batch (one round trip, no per-row SQL to compile),
and only the events that were new update their call rows, folded per call
first: one upsert statement may not touch a row twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.audit.calls import CallStatus, call_update
from voicebus.audit.models import CallEventRow, CallRow
from voicebus.contracts.events import CallEvent

EVENTS: Table = CallEventRow.__table__  # type: ignore[attr-defined]  # set by SQLModel
CALLS: Table = CallRow.__table__  # type: ignore[attr-defined]
_ORDER = [s.label for s in sorted(CallStatus)]
Incoming = tuple[CallEvent, int | None, str | bytes]
"""An event to store: the parsed event, its stream sequence, and its JSON as received."""
_CALL_COLUMNS: Final = (
    "tenant_id", "call_id", "status", "direction", "provider", "agent_id", "from_number",
    "to_number", "initiated_at", "started_at", "ended_at", "duration_s", "ended_reason",
    "updated_at",
)  # fmt: skip
"""Columns of ``calls`` in the order of :data:`_UPSERT_CALLS`' parameters."""
# A column an update leaves NULL keeps its value; the later status wins whatever order
# events arrive in ($15 is the status order): a late call.ringing never rewinds an
# in-progress call, nothing reopens an ended one.
_UPSERT_CALLS: Final = """
INSERT INTO calls (tenant_id, call_id, status, direction, provider, agent_id, from_number,
                   to_number, initiated_at, started_at, ended_at, duration_s, ended_reason,
                   updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[],
                     $11::timestamptz[], $12::float8[], $13::text[], $14::timestamptz[])
ON CONFLICT (tenant_id, call_id) DO UPDATE SET
    direction = coalesce(EXCLUDED.direction, calls.direction),
    provider = coalesce(EXCLUDED.provider, calls.provider),
    agent_id = coalesce(EXCLUDED.agent_id, calls.agent_id),
    from_number = coalesce(EXCLUDED.from_number, calls.from_number),
    to_number = coalesce(EXCLUDED.to_number, calls.to_number),
    initiated_at = coalesce(EXCLUDED.initiated_at, calls.initiated_at),
    started_at = coalesce(EXCLUDED.started_at, calls.started_at),
    ended_at = coalesce(EXCLUDED.ended_at, calls.ended_at),
    duration_s = coalesce(EXCLUDED.duration_s, calls.duration_s),
    ended_reason = coalesce(EXCLUDED.ended_reason, calls.ended_reason),
    status = CASE WHEN array_position($15::text[], EXCLUDED.status)
                       > array_position($15::text[], calls.status)
                  THEN EXCLUDED.status ELSE calls.status END,
    updated_at = EXCLUDED.updated_at
"""
# $8 is each event's whole JSON as received: PostgreSQL takes its ``data`` member, so the
# event body is stored as published (fields a newer version added included) and Python
# never re-serializes it.
_INSERT_EVENTS: Final = """
INSERT INTO call_events (id, tenant_id, call_id, type, source, time, stream_seq, data, received_at)
SELECT id, tenant_id, call_id, type, source, time, stream_seq, envelope -> 'data', $9
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
            $7::bigint[], $8::jsonb[])
     AS t(id, tenant_id, call_id, type, source, time, stream_seq, envelope)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""


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
        return await self.append_many([(event, stream_seq, event.model_dump_json())]) == 1

    async def append_many(self, batch: Sequence[Incoming]) -> int:
        """Store a batch of ``(event, stream sequence, the event's JSON)`` in one transaction.

        Events already stored (or repeated within the batch) change nothing.

        Returns:
            How many events were new.
        """
        if not batch:
            return 0
        now = datetime.now(UTC)
        events: list[list[Any]] = [[] for _ in range(8)]
        for event, seq, envelope in batch:
            row = (event.id, event.tenant_id, event.call_id, event.type, event.source,
                   event.time, seq, envelope)  # fmt: skip
            for column, value in zip(events, row, strict=True):
                column.append(value)
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            async with driver.transaction():
                inserted = {r["id"] for r in await driver.fetch(_INSERT_EVENTS, *events, now)}
                if inserted:
                    new = _first_of_each(batch, inserted)
                    calls = fold_call_updates(call_update(item[0]) for item in new)
                    await driver.execute(_UPSERT_CALLS, *_call_columns(calls, now), _ORDER)
        return len(inserted)


def _first_of_each(batch: Sequence[Incoming], ids: set[str]) -> list[Incoming]:
    """The batch's events whose id is in ``ids``, each id once, in batch order."""
    seen: set[str] = set()
    out = []
    for item in batch:
        event_id = item[0].id
        if event_id in ids and event_id not in seen:
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


def _call_columns(updates: list[dict[str, Any]], now: datetime) -> list[list[Any]]:
    """The folded updates as one array per column of :data:`_CALL_COLUMNS`."""
    columns: list[list[Any]] = [[] for _ in _CALL_COLUMNS]
    for update in updates:
        values = {**update, "status": update["status"].label, "updated_at": now}
        for column, name in zip(columns, _CALL_COLUMNS, strict=True):
            column.append(values.get(name))
    return columns
