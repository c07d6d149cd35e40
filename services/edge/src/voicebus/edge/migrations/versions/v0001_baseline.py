"""Baseline: the edge tables exactly as the release before migrations created them.

Creates what is missing and adopts a schema that release made (see
:mod:`voicebus.runtime.migrations.baseline`). A frozen copy: later changes to the
tables go into new revisions, never here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from voicebus.runtime.migrations import baseline

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

METADATA = MetaData()

TENANTS = Table(
    "tenants",
    METADATA,
    Column("tenant_id", String(128), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

API_KEYS = Table(
    "api_keys",
    METADATA,
    Column("key_id", String(16), primary_key=True),
    Column("tenant_id", String(128), ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("name", String(256), nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("scopes", ARRAY(String(32)), nullable=False),
    Column("rate_limit_per_minute", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

PROVIDER_ACCOUNTS = Table(
    "provider_accounts",
    METADATA,
    Column("tenant_id", String(128), ForeignKey("tenants.tenant_id"), primary_key=True),
    Column("provider", String(32), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("secret_names", ARRAY(String(64)), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

IDEMPOTENCY_KEYS = Table(
    "idempotency_keys",
    METADATA,
    # The primary key is what resolves concurrent duplicates: one insert wins.
    Column("tenant_id", String(128), primary_key=True),
    Column("route", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("status", Integer, nullable=True),
    Column("response", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

TENANT_LIMITS = Table(
    "tenant_limits",
    METADATA,
    Column("tenant_id", String(128), ForeignKey("tenants.tenant_id"), primary_key=True),
    Column("calls_per_minute", Integer, nullable=True),
    Column("allowed_countries", ARRAY(String(2)), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

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

ADOPT: tuple[str, ...] = ()

# A gateway of an even earlier release kept the tenancy tables in schema ``gateway``:
# they move here as they are (rows, indexes and foreign keys go along).
LEGACY_SCHEMA = "gateway"
LEGACY_TABLES = ("tenants", "api_keys", "provider_accounts", "idempotency_keys", "tenant_limits")


def _move_gateway_tables() -> None:
    conn = op.get_bind()
    target = conn.execute(text("SELECT current_schema()")).scalar_one()
    for name in LEGACY_TABLES:  # referenced tables (tenants) first
        old = conn.execute(text("SELECT to_regclass(:n)"), {"n": f"{LEGACY_SCHEMA}.{name}"})
        new = conn.execute(text("SELECT to_regclass(:n)"), {"n": f"{target}.{name}"})
        if old.scalar() is None or new.scalar() is not None:
            continue
        # Names from this file and the runner's validated schema: safe in DDL.
        op.execute(f"ALTER TABLE {LEGACY_SCHEMA}.{name} SET SCHEMA {target}")


def upgrade() -> None:
    """Create the missing tables and indexes, bring an earlier release's up to date, verify."""
    _move_gateway_tables()
    baseline.apply(op.get_bind(), METADATA, ADOPT)


def downgrade() -> None:
    """Drop every table of the schema (its data with it)."""
    METADATA.drop_all(op.get_bind())
