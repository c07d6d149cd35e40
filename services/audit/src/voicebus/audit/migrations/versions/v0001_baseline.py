"""Baseline: the audit tables exactly as the release before migrations created them.

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
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)
from sqlalchemy.dialects.postgresql import JSONB

from voicebus.runtime.migrations import baseline

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

METADATA = MetaData()

CALL_EVENTS = Table(
    "call_events",
    METADATA,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("call_id", String(128), nullable=False),
    Column("type", String(64), nullable=False),
    Column("source", String(256), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("stream_seq", BigInteger),
    Column("data", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("chain_seq", Integer),
    Column("hash", LargeBinary),
    Index("call_events_by_call", "tenant_id", "call_id", "time"),
    Index("call_events_chain", "tenant_id", "call_id", "chain_seq", unique=True),
)

CALLS = Table(
    "calls",
    METADATA,
    Column("tenant_id", String(128), primary_key=True),
    Column("call_id", String(128), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("direction", String(16)),
    Column("provider", String(32)),
    Column("agent_id", String(128)),
    Column("from_number", String(64)),
    Column("to_number", String(64)),
    Column("initiated_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("duration_s", Float),
    Column("ended_reason", String(32)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("chain_head", LargeBinary),
    Column("chain_length", Integer, nullable=False, server_default="0"),
)

# What the previous release ran at every start, after creating the tables.
ADOPT = (
    "ALTER TABLE call_events ADD COLUMN IF NOT EXISTS chain_seq integer",
    "ALTER TABLE call_events ADD COLUMN IF NOT EXISTS hash bytea",
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS chain_head bytea",
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS chain_length integer NOT NULL DEFAULT 0",
    "CREATE UNIQUE INDEX IF NOT EXISTS call_events_chain "
    "ON call_events (tenant_id, call_id, chain_seq)",
)


def upgrade() -> None:
    """Create the missing tables and indexes, bring an earlier release's up to date, verify."""
    baseline.apply(op.get_bind(), METADATA, ADOPT)


def downgrade() -> None:
    """Drop every table of the schema (its data with it)."""
    METADATA.drop_all(op.get_bind())
