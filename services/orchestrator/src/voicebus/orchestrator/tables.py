"""The orchestrator's tables, in its own schema ``orchestrator``.

Agents and tools are versioned documents: ``resources`` holds one row per
(kind, owner, name) with the version new calls use, ``resource_versions`` every
version ever saved (immutable). The owner is the tenant id, or ``''`` for a
shared template. A webhook tool's secrets are one Fernet token per version.
``caller_memory`` holds what the agents remember about each caller of a tenant.
``knowledge_bases``, ``kb_documents`` and ``kb_chunks`` hold each tenant's document
collections: a document's chunks are replaced only when its content hash changes, and
the base's ``revision`` grows with every change, so indexes know when to rebuild.
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
    Text,
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

KNOWLEDGE_BASES = Table(
    "knowledge_bases",
    METADATA,
    Column("tenant_id", String(128), nullable=False),
    Column("kb_id", String(64), nullable=False),
    Column("name", String(256), nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("revision", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "kb_id", name="knowledge_bases_pk"),
)
"""A tenant's document collection; ``revision`` grows with every document change."""

KB_DOCUMENTS = Table(
    "kb_documents",
    METADATA,
    Column("tenant_id", String(128), nullable=False),
    Column("kb_id", String(64), nullable=False),
    Column("document_id", String(128), nullable=False),
    Column("filename", String(256), nullable=False, server_default=""),
    Column("format", String(8), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "kb_id", "document_id", name="kb_documents_pk"),
)
"""One row per document; the file itself is not kept, only its chunks."""

KB_CHUNKS = Table(
    "kb_chunks",
    METADATA,
    Column("tenant_id", String(128), nullable=False),
    Column("kb_id", String(64), nullable=False),
    Column("document_id", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("chunk_id", String(200), nullable=False),
    Column("heading", Text, nullable=False, server_default=""),
    Column("text", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "kb_id", "document_id", "seq", name="kb_chunks_pk"),
)
"""A document's voice-sized chunks, in order."""
