"""Persisting events: one transaction per event, idempotent on the event id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, case, func
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.audit.calls import CallStatus, call_update
from voicebus.audit.models import CallEventRow, CallRow
from voicebus.contracts.events import CallEvent

EVENTS: Table = CallEventRow.__table__  # type: ignore[attr-defined]  # set by SQLModel
CALLS: Table = CallRow.__table__  # type: ignore[attr-defined]
_ORDER = [s.label for s in sorted(CallStatus)]


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
        now = datetime.now(UTC)
        row = {
            "id": event.id,
            "tenant_id": event.tenant_id,
            "call_id": event.call_id,
            "type": event.type,
            "source": event.source,
            "time": event.time,
            "stream_seq": stream_seq,
            "data": event.data.model_dump(mode="json"),
            "received_at": now,
        }
        async with self.engine.begin() as conn:
            inserted = await conn.execute(
                insert(EVENTS).values(row).on_conflict_do_nothing().returning(EVENTS.c.id)
            )
            if inserted.first() is None:
                return False
            await conn.execute(_upsert_call(call_update(event), now))
        return True


def _upsert_call(update: dict[str, Any], now: datetime) -> Any:
    status: CallStatus = update.pop("status", CallStatus.INITIATED)
    stmt = insert(CALLS).values({**update, "status": status.label, "updated_at": now})
    excluded = stmt.excluded
    order = array(_ORDER)
    columns: dict[str, Any] = {
        name: func.coalesce(excluded[name], CALLS.c[name])
        for name in update
        if name not in {"tenant_id", "call_id"}
    }
    # The later status wins whatever order events arrive in: a late call.ringing
    # never rewinds an in-progress call, nothing reopens an ended one.
    columns["status"] = case(
        (
            func.array_position(order, excluded.status)
            > func.array_position(order, CALLS.c.status),
            excluded.status,
        ),
        else_=CALLS.c.status,
    )
    columns["updated_at"] = excluded.updated_at
    return stmt.on_conflict_do_update(
        index_elements=[CALLS.c.tenant_id, CALLS.c.call_id], set_=columns
    )
