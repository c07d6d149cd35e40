"""One row per metered quantity of one event: summed per tenant and day when asked.

The primary key (event id, metric) makes counting idempotent: an event ingested twice
(a redelivery after a crash before its ack) is counted once.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, Float, Index, String, Table

from voicebus.edge.tenancy.tables import METADATA

USAGE_ITEMS = Table(
    "usage_items",
    METADATA,
    Column("event_id", String(64), primary_key=True),
    Column("metric", String(32), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("call_id", String(128), nullable=False),
    Column("day", Date, nullable=False),
    Column("dimension", String(160), nullable=False),
    Column("amount", Float, nullable=False),
    Index("usage_items_tenant_day", "tenant_id", "day"),
    Index("usage_items_call", "tenant_id", "call_id", "metric"),
)
