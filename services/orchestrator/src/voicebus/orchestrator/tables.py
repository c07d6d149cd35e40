"""The orchestrator's tables, in its own schema ``orchestrator``.

Agents and tools are versioned documents: ``resources`` holds one row per
(kind, owner, name) with the version new calls use, ``resource_versions`` every
version ever saved (immutable). The owner is the tenant id, or ``''`` for a
shared template. A webhook tool's secrets are one Fernet token per version.
``caller_memory`` holds what the agents remember about each caller of a tenant.
"""

from __future__ import annotations

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
