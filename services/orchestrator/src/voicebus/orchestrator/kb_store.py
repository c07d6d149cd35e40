"""Knowledge bases in PostgreSQL (schema ``orchestrator``); every query names its tenant.

A document's chunks are replaced in the same transaction that records its new content
hash and bumps the base's revision, under a lock on the base's row, so two uploads to
one base apply one after the other and an index built at revision N holds exactly the
chunks of revision N.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicebus.contracts.knowledge import Document, DocumentFormat, KnowledgeBase
from voicebus.orchestrator.kb_chunks import Chunk
from voicebus.orchestrator.tables import KB_CHUNKS as CHUNKS
from voicebus.orchestrator.tables import KB_DOCUMENTS as DOCS
from voicebus.orchestrator.tables import KNOWLEDGE_BASES as BASES


def _document(row: Row[tuple[object, ...]]) -> Document:
    m = row._mapping
    return Document(
        document_id=m["document_id"],
        filename=m["filename"],
        format=DocumentFormat(m["format"]),
        content_hash=m["content_hash"],
        size_bytes=m["size_bytes"],
        chunks=m["chunk_count"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


class SqlKnowledgeStore:
    """Knowledge bases, documents and chunks.

    Args:
        engine: an engine on the orchestrator's schema.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_base(
        self, tenant_id: str, kb_id: str, name: str, description: str, now: datetime
    ) -> KnowledgeBase | None:
        """The new base (None: the tenant already has one with this id)."""
        query = (
            insert(BASES)
            .values(tenant_id=tenant_id, kb_id=kb_id, name=name, description=description,
                    revision=0, created_at=now, updated_at=now)
            .on_conflict_do_nothing()
            .returning(BASES.c.kb_id)
        )  # fmt: skip
        async with self._engine.begin() as conn:
            created = (await conn.execute(query)).first()
        if created is None:
            return None
        return KnowledgeBase(kb_id=kb_id, name=name, description=description,
                             created_at=now, updated_at=now)  # fmt: skip

    async def bases(self, tenant_id: str, kb_id: str | None = None) -> list[KnowledgeBase]:
        """The tenant's bases (or the one named) with their document and chunk counts."""
        counts = (
            select(
                DOCS.c.kb_id,
                func.count().label("documents"),
                func.coalesce(func.sum(DOCS.c.chunk_count), 0).label("chunks"),
            )
            .where(DOCS.c.tenant_id == tenant_id)
            .group_by(DOCS.c.kb_id)
            .subquery()
        )
        query = (
            select(BASES, func.coalesce(counts.c.documents, 0).label("documents"),
                   func.coalesce(counts.c.chunks, 0).label("chunks"))
            .outerjoin(counts, counts.c.kb_id == BASES.c.kb_id)
            .where(BASES.c.tenant_id == tenant_id)
            .order_by(BASES.c.kb_id)
        )  # fmt: skip
        if kb_id is not None:
            query = query.where(BASES.c.kb_id == kb_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            KnowledgeBase(kb_id=r.kb_id, name=r.name, description=r.description,
                          documents=int(r.documents), chunks=int(r.chunks),
                          created_at=r.created_at, updated_at=r.updated_at)
            for r in rows
        ]  # fmt: skip

    async def delete_base(self, tenant_id: str, kb_id: str) -> bool:
        """Delete a base with its documents and chunks (False: there was none)."""
        async with self._engine.begin() as conn:
            for table in (CHUNKS, DOCS):
                await conn.execute(
                    delete(table).where(table.c.tenant_id == tenant_id, table.c.kb_id == kb_id)
                )
            gone = await conn.execute(
                delete(BASES)
                .where(BASES.c.tenant_id == tenant_id, BASES.c.kb_id == kb_id)
                .returning(BASES.c.kb_id)
            )
            return gone.first() is not None

    async def revision(self, tenant_id: str, kb_id: str) -> int | None:
        """The base's revision (None: no such base)."""
        query = select(BASES.c.revision).where(BASES.c.tenant_id == tenant_id,
                                               BASES.c.kb_id == kb_id)  # fmt: skip
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def documents(
        self, tenant_id: str, kb_id: str, document_id: str | None = None
    ) -> list[Document]:
        """The base's documents by id (or the one named)."""
        query = select(DOCS).where(DOCS.c.tenant_id == tenant_id, DOCS.c.kb_id == kb_id)
        if document_id is not None:
            query = query.where(DOCS.c.document_id == document_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(DOCS.c.document_id))).all()
        return [_document(r) for r in rows]

    async def chunks(self, tenant_id: str, kb_id: str) -> tuple[int, list[tuple[str, Chunk]]]:
        """The base's revision and its chunks as ``(document id, chunk)``, in one snapshot."""
        async with self._engine.begin() as conn:
            revision = (
                await conn.execute(
                    select(BASES.c.revision).where(BASES.c.tenant_id == tenant_id,
                                                   BASES.c.kb_id == kb_id)
                )
            ).scalar_one_or_none()  # fmt: skip
            rows = (
                await conn.execute(
                    select(CHUNKS)
                    .where(CHUNKS.c.tenant_id == tenant_id, CHUNKS.c.kb_id == kb_id)
                    .order_by(CHUNKS.c.document_id, CHUNKS.c.seq)
                )
            ).all()
        return revision or 0, [(r.document_id, Chunk(r.chunk_id, r.heading, r.text)) for r in rows]

    async def replace_document(
        self, tenant_id: str, kb_id: str, document: Document, chunks: Sequence[Chunk]
    ) -> tuple[Document, bool] | None:
        """Store a document's new content and chunks; ``(stored, changed)``.

        The same content hash already stored changes nothing (``changed`` false). None:
        no such base.
        """
        async with self._engine.begin() as conn:
            if not await self._lock_base(conn, tenant_id, kb_id):
                return None
            key = (DOCS.c.tenant_id == tenant_id, DOCS.c.kb_id == kb_id,
                   DOCS.c.document_id == document.document_id)  # fmt: skip
            old = (await conn.execute(select(DOCS).where(*key))).first()
            if old is not None and old.content_hash == document.content_hash:
                return _document(old), False
            created = old.created_at if old is not None else document.created_at
            stored = document.model_copy(update={"created_at": created})
            await self._drop_chunks(conn, tenant_id, kb_id, document.document_id)
            if chunks:
                await conn.execute(
                    insert(CHUNKS),
                    [{"tenant_id": tenant_id, "kb_id": kb_id, "document_id": document.document_id,
                      "seq": n, "chunk_id": c.chunk_id, "heading": c.heading, "text": c.text}
                     for n, c in enumerate(chunks)],
                )  # fmt: skip
            values = {
                "filename": stored.filename, "format": stored.format.value,
                "content_hash": stored.content_hash, "size_bytes": stored.size_bytes,
                "chunk_count": len(chunks), "updated_at": stored.updated_at,
            }  # fmt: skip
            await conn.execute(
                insert(DOCS)
                .values(tenant_id=tenant_id, kb_id=kb_id, document_id=stored.document_id,
                        created_at=created, **values)
                .on_conflict_do_update(constraint="kb_documents_pk", set_=values)
            )  # fmt: skip
            await self._bump(conn, tenant_id, kb_id, stored.updated_at)
        return stored, True

    async def delete_document(
        self, tenant_id: str, kb_id: str, document_id: str, now: datetime
    ) -> Document | None:
        """Delete a document and its chunks; returns it (None: there was none)."""
        async with self._engine.begin() as conn:
            if not await self._lock_base(conn, tenant_id, kb_id):
                return None
            gone = (
                await conn.execute(
                    delete(DOCS)
                    .where(DOCS.c.tenant_id == tenant_id, DOCS.c.kb_id == kb_id,
                           DOCS.c.document_id == document_id)
                    .returning(*DOCS.c)
                )
            ).first()  # fmt: skip
            if gone is None:
                return None
            await self._drop_chunks(conn, tenant_id, kb_id, document_id)
            await self._bump(conn, tenant_id, kb_id, now)
        return _document(gone)

    @staticmethod
    async def _lock_base(conn: AsyncConnection, tenant_id: str, kb_id: str) -> bool:
        query = (
            select(BASES.c.kb_id)
            .where(BASES.c.tenant_id == tenant_id, BASES.c.kb_id == kb_id)
            .with_for_update()
        )
        return (await conn.execute(query)).first() is not None

    @staticmethod
    async def _drop_chunks(
        conn: AsyncConnection, tenant_id: str, kb_id: str, document_id: str
    ) -> None:
        await conn.execute(
            delete(CHUNKS).where(CHUNKS.c.tenant_id == tenant_id, CHUNKS.c.kb_id == kb_id,
                                 CHUNKS.c.document_id == document_id)
        )  # fmt: skip

    @staticmethod
    async def _bump(conn: AsyncConnection, tenant_id: str, kb_id: str, now: datetime) -> None:
        await conn.execute(
            BASES.update()
            .where(BASES.c.tenant_id == tenant_id, BASES.c.kb_id == kb_id)
            .values(revision=BASES.c.revision + 1, updated_at=now)
        )
