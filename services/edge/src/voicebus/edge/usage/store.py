"""Usage items in PostgreSQL: written by the event ingester, summed per tenant and day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicebus.edge.usage.metering import UNKNOWN, Metric, UsageItem
from voicebus.edge.usage.tables import USAGE_ITEMS


@dataclass(frozen=True, slots=True)
class UsageRow:
    """The sum of one metric under one dimension on one day."""

    day: date
    metric: Metric
    dimension: str
    amount: float


async def record(conn: AsyncConnection, items: list[UsageItem]) -> None:
    """Store ``items`` within the caller's transaction (an item stored before is skipped).

    ``call_seconds`` takes the day and dimension of the call's ``calls`` item, stored
    earlier or just before in the same batch (events are ingested in stream order).
    """
    known = [i for i in items if i.dimension is not None]
    if known:
        await conn.execute(
            pg_insert(USAGE_ITEMS).values([_row(i, i.day, i.dimension or "") for i in known])
            .on_conflict_do_nothing()
        )  # fmt: skip
    for late in (i for i in items if i.dimension is None):
        started = (
            await conn.execute(
                select(USAGE_ITEMS.c.day, USAGE_ITEMS.c.dimension).where(
                    USAGE_ITEMS.c.tenant_id == late.tenant_id,
                    USAGE_ITEMS.c.call_id == late.call_id,
                    USAGE_ITEMS.c.metric == Metric.CALLS.value,
                )
            )
        ).first()
        day, dimension = (started.day, started.dimension) if started else (late.day, _UNKNOWN_CALL)
        await conn.execute(
            pg_insert(USAGE_ITEMS).values([_row(late, day, dimension)]).on_conflict_do_nothing()
        )


async def summed(engine: AsyncEngine, tenant_id: str, first: date, last: date) -> list[UsageRow]:
    """Per day, metric and dimension, the tenant's usage from ``first`` to ``last``
    (both included), in that order."""
    query = (
        select(
            USAGE_ITEMS.c.day,
            USAGE_ITEMS.c.metric,
            USAGE_ITEMS.c.dimension,
            func.sum(USAGE_ITEMS.c.amount).label("amount"),
        )
        .where(
            USAGE_ITEMS.c.tenant_id == tenant_id,
            USAGE_ITEMS.c.day >= first,
            USAGE_ITEMS.c.day <= last,
        )
        .group_by(USAGE_ITEMS.c.day, USAGE_ITEMS.c.metric, USAGE_ITEMS.c.dimension)
        .order_by(USAGE_ITEMS.c.day, USAGE_ITEMS.c.metric, USAGE_ITEMS.c.dimension)
    )
    async with engine.connect() as conn:
        rows = await conn.execute(query)
    return [UsageRow(r.day, Metric(r.metric), r.dimension, float(r.amount)) for r in rows]


_UNKNOWN_CALL = f"{UNKNOWN}/{UNKNOWN}"


def _row(item: UsageItem, day: date, dimension: str) -> dict[str, object]:
    return {
        "event_id": item.event_id,
        "metric": item.metric.value,
        "tenant_id": item.tenant_id,
        "call_id": item.call_id,
        "day": day,
        "dimension": dimension[:160],
        "amount": item.amount,
    }
