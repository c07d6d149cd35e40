"""Baseline: the campaigns tables exactly as the release before migrations created them.

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
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from voicebus.runtime.migrations import baseline

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

METADATA = MetaData()


def _ts(name: str, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


CAMPAIGNS = Table(
    "campaigns",
    METADATA,
    Column("tenant_id", String(128), primary_key=True),
    Column("campaign_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("spec", JSONB, nullable=False),
    _ts("created_at", False),
    _ts("updated_at", False),
    # Pacing token bucket, shared by every instance (real epoch seconds).
    Column("pace_tokens", Float, nullable=False, server_default="0"),
    Column("pace_at", Float, nullable=False, server_default="0"),
    Column("served_at", Float, nullable=False, server_default="0"),
)

CONTACTS = Table(
    "contacts",
    METADATA,
    Column("contact_id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", String(128), nullable=False),
    Column("campaign_id", String(64), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("region", String(8)),
    Column("zones", ARRAY(Text), nullable=False),
    Column("context", JSONB, nullable=False),
    Column("line", Integer),
    # pending → dialing → pending (retry) | done; dnc; expired (campaign ended first)
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    _ts("next_at", False),
    Column("outcome", String(16)),
    Column("duration_s", Float),
    Column("recording_id", String(64)),
    Column("last_call_id", String(64)),
    Column("disposition", String(64)),
    Column("success", String(16)),
    _ts("last_attempt_at"),
    UniqueConstraint("tenant_id", "campaign_id", "phone", name="contacts_one_per_number"),
    Index("contacts_due", "campaign_id", "state", "next_at", "contact_id"),
)

ATTEMPTS = Table(
    "attempts",
    METADATA,
    Column("attempt_id", String(64), primary_key=True),
    Column("call_id", String(64), nullable=False, unique=True),
    Column("tenant_id", String(128), nullable=False),
    Column("campaign_id", String(64), nullable=False),
    Column("contact_id", BigInteger, nullable=False),
    Column("attempt_no", Integer, nullable=False),
    Column("from_number", String(32)),
    # claimed (committed, command not yet confirmed) → dialed → answered → ended
    Column("status", String(16), nullable=False),
    Column("claimed_by", String(160)),
    _ts("claimed_at"),
    _ts("lease_until"),
    _ts("dialed_at", False),
    _ts("answered_at"),
    _ts("ended_at"),
    Column("outcome", String(16)),
    Column("end_reason", String(32)),
    Column("amd", String(32)),
    Column("duration_s", Float),
    Column("recording_id", String(64)),
    Column("disposition", String(64)),
    Column("success", String(16)),
    UniqueConstraint("contact_id", "attempt_no", name="attempts_once_per_number"),
    Index("attempts_live", "tenant_id", "status"),
    Index("attempts_by_campaign", "campaign_id", "outcome"),
)

DNC = Table(
    "dnc",
    METADATA,
    Column("tenant_id", String(128), primary_key=True),
    Column("scope", String(64), primary_key=True),  # "" = the tenant's list, else a campaign id
    Column("phone", String(32), primary_key=True),
    Column("reason", String(256)),
    _ts("created_at", False),
)

UPLOADS = Table(
    "uploads",
    METADATA,
    Column("upload_id", String(64), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("campaign_id", String(64), nullable=False),
    Column("header", Text),
    Column("rows", Integer, nullable=False, server_default="0"),
    Column("loaded", Integer, nullable=False, server_default="0"),
    Column("merged", Integer, nullable=False, server_default="0"),
    Column("dnc", Integer, nullable=False, server_default="0"),
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("errors", JSONB, nullable=False, server_default="[]"),
    _ts("updated_at", False),
)

OUTBOX = Table(
    "outbox",
    METADATA,
    # Decision events staged in the decision's own transaction, published by the relay.
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("subject", Text, nullable=False),
    Column("msg_id", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    _ts("created_at", False),
)

# What the previous release ran at every start, after creating the tables.
ADOPT = (
    "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS disposition varchar(64)",
    "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS success varchar(16)",
    "ALTER TABLE attempts ADD COLUMN IF NOT EXISTS disposition varchar(64)",
    "ALTER TABLE attempts ADD COLUMN IF NOT EXISTS success varchar(16)",
)


def upgrade() -> None:
    """Create the missing tables and indexes, bring an earlier release's up to date, verify."""
    baseline.apply(op.get_bind(), METADATA, ADOPT)


def downgrade() -> None:
    """Drop every table of the schema (its data with it)."""
    METADATA.drop_all(op.get_bind())
