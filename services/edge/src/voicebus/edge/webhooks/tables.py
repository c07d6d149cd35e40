"""Webhook subscriptions, their deliveries (the outbox and its log) and each attempt.

In the edge's schema and metadata (:mod:`voicebus.edge.tenancy.tables`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY

from voicebus.edge.tenancy.tables import METADATA

WEBHOOKS = Table(
    "webhooks",
    METADATA,
    Column("webhook_id", String(32), primary_key=True),
    Column("tenant_id", String(128), ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("event_types", ARRAY(String(128)), nullable=False),
    Column("description", String(256), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

DELIVERIES = Table(
    "webhook_deliveries",
    METADATA,
    Column("delivery_id", String(64), primary_key=True),
    Column(
        "webhook_id",
        String(32),
        ForeignKey("webhooks.webhook_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("tenant_id", String(128), nullable=False),
    Column("call_id", String(128), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(128), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("budget", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(256), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("webhook_id", "event_id", name="webhook_deliveries_once"),
    Index("webhook_deliveries_due", "status", "next_attempt_at"),
    Index("webhook_deliveries_order", "webhook_id", "call_id", "seq"),
)

ATTEMPTS = Table(
    "webhook_attempts",
    METADATA,
    Column(
        "delivery_id",
        String(64),
        ForeignKey("webhook_deliveries.delivery_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("attempt", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(256), nullable=True),
    Column("duration_ms", Float, nullable=False),
)
