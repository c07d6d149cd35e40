"""Baseline: the orchestrator tables exactly as the release before migrations created them.

Creates what is missing and adopts a schema that release made (see
:mod:`voicebus.runtime.migrations.baseline`). A frozen copy: later changes to the
tables go into new revisions, never here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
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

RESOURCES = Table(
    "resources",
    METADATA,
    Column("kind", String(16), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("current_version", Integer, nullable=False),
    Column("archived", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("kind", "owner", "name", name="resources_pk"),
)

RESOURCE_VERSIONS = Table(
    "resource_versions",
    METADATA,
    Column("kind", String(16), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("secret", LargeBinary),
    Column("digest", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("kind", "owner", "name", "version", name="resource_versions_pk"),
)

CALLER_MEMORY = Table(
    "caller_memory",
    METADATA,
    Column("tenant_id", String(128), nullable=False),
    Column("number", String(64), nullable=False),
    Column("profile", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "number", name="caller_memory_pk"),
)
"""Caller memory: one profile per tenant and caller number (personal data; deletable)."""

ADOPT: tuple[str, ...] = ()


def upgrade() -> None:
    """Create the missing tables and indexes, bring an earlier release's up to date, verify."""
    baseline.apply(op.get_bind(), METADATA, ADOPT)


def downgrade() -> None:
    """Drop every table of the schema (its data with it)."""
    METADATA.drop_all(op.get_bind())
