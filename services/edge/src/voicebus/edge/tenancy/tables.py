"""The edge's tables, in its own schema ``edge`` (SQLAlchemy Core, own metadata).

Own ``MetaData`` rather than ``SQLModel.metadata``: a process that hosts
several services (tests, ``voicebus dev`` in one process) must not create one
service's tables in another's schema.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY

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
    Column("max_concurrent_calls", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

TENANT_RETENTION = Table(
    "tenant_retention",
    METADATA,
    Column("tenant_id", String(128), ForeignKey("tenants.tenant_id"), primary_key=True),
    Column("events_days", Integer, nullable=True),
    Column("transcripts_days", Integer, nullable=True),
    Column("recordings_days", Integer, nullable=True),
    Column("contacts_days", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""How long each kind of a tenant's data is kept (null: for ever)."""
