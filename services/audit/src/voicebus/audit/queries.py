"""Reads for the REST edge: calls and their events, always within one tenant."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.audit.models import CallEventRow, CallRow
from voicebus.contracts.events import CallAnalyzed, CallAnalyzedData
from voicebus.contracts.rpc import CallSummary, ListCallEvents, ListCalls, StoredEvent

EVENTS: Table = CallEventRow.__table__  # type: ignore[attr-defined]  # set by SQLModel
CALLS: Table = CallRow.__table__  # type: ignore[attr-defined]


def _summary(row: Any) -> CallSummary:
    return CallSummary(
        call_id=row.call_id,
        status=row.status,
        direction=row.direction,
        provider=row.provider,
        agent_id=row.agent_id,
        from_number=row.from_number,
        to_number=row.to_number,
        initiated_at=row.initiated_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_s=row.duration_s,
        ended_reason=row.ended_reason,
    )


async def list_calls(
    engine: AsyncEngine, request: ListCalls
) -> tuple[list[CallSummary], str | None]:
    """A page of the tenant's calls, newest id first, and the cursor of the next page."""
    query = select(CALLS).where(CALLS.c.tenant_id == request.tenant_id)
    if request.before is not None:
        query = query.where(CALLS.c.call_id < request.before)
    for column, wanted in (
        (CALLS.c.status, request.status),
        (CALLS.c.agent_id, request.agent_id),
        (CALLS.c.direction, request.direction),
        (CALLS.c.provider, request.provider),
        (CALLS.c.ended_reason, request.ended_reason),
    ):
        if wanted is not None:
            query = query.where(column == wanted)
    if request.phone is not None:
        query = query.where(
            or_(CALLS.c.from_number == request.phone, CALLS.c.to_number == request.phone)
        )
    if request.since is not None:
        query = query.where(CALLS.c.initiated_at >= request.since)
    if request.until is not None:
        query = query.where(CALLS.c.initiated_at < request.until)
    query = query.order_by(CALLS.c.call_id.desc()).limit(request.limit + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    calls = [_summary(r) for r in rows[: request.limit]]
    more = len(rows) > request.limit
    return calls, (calls[-1].call_id if more and calls else None)


async def get_call(engine: AsyncEngine, tenant_id: str, call_id: str) -> CallSummary | None:
    """The tenant's call, or None (another tenant's call is not found either)."""
    query = select(CALLS).where(CALLS.c.tenant_id == tenant_id, CALLS.c.call_id == call_id)
    analysed = (
        select(EVENTS.c.data)
        .where(
            EVENTS.c.tenant_id == tenant_id,
            EVENTS.c.call_id == call_id,
            EVENTS.c.type == CallAnalyzed.model_fields["type"].default,
        )
        .order_by(EVENTS.c.time.desc())
        .limit(1)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
        analysis = (await conn.execute(analysed)).first() if row is not None else None
    if row is None:
        return None
    return _summary(row).model_copy(update={"analysis": _analysis(analysis)})


def _analysis(row: Any) -> CallAnalyzedData | None:
    """The stored ``call.analyzed`` data (as published; a newer version's extra fields go)."""
    if row is None:
        return None
    try:
        return CallAnalyzedData.model_validate(row.data)
    except ValidationError:
        return None


async def list_events(
    engine: AsyncEngine, request: ListCallEvents
) -> tuple[list[StoredEvent], str | None]:
    """A page of one call's events in (time, id) order, and the cursor of the next page."""
    mine = and_(EVENTS.c.tenant_id == request.tenant_id, EVENTS.c.call_id == request.call_id)
    query = select(EVENTS).where(mine)
    async with engine.connect() as conn:
        if request.after is not None:
            cursor = (
                await conn.execute(select(EVENTS.c.time).where(mine, EVENTS.c.id == request.after))
            ).first()
            if cursor is not None:
                query = query.where(
                    or_(
                        EVENTS.c.time > cursor.time,
                        and_(EVENTS.c.time == cursor.time, EVENTS.c.id > request.after),
                    )
                )
        query = query.order_by(EVENTS.c.time, EVENTS.c.id).limit(request.limit + 1)
        rows = (await conn.execute(query)).all()
    events = [
        StoredEvent(id=r.id, type=r.type, source=r.source, time=r.time, data=r.data)
        for r in rows[: request.limit]
    ]
    more = len(rows) > request.limit
    return events, (events[-1].id if more and events else None)
