"""Knowledge bases: documents in, voice-sized chunks indexed, chunks out per query.

A document is parsed (:mod:`.kb_documents`), chunked (:mod:`.kb_chunks`) and its chunks
stored; its SHA-256 is checked first, so the same content again is neither parsed nor
re-indexed. Searches use one BM25 index per base (:mod:`.kb_index`), kept in memory and
rebuilt only when the base's revision in the store has moved (a change made through
any orchestrator instance), which costs one indexed read per search.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from voicebus.contracts.events import utc_now
from voicebus.contracts.knowledge import Document, KnowledgeBase, PutDocument
from voicebus.orchestrator.errors import DocumentError, OrchestratorError
from voicebus.orchestrator.kb_chunks import Chunk, chunk_blocks, content_hash
from voicebus.orchestrator.kb_documents import parse_document
from voicebus.orchestrator.kb_index import LexicalIndex, warm_up
from voicebus.orchestrator.kb_store import SqlKnowledgeStore

log = logging.getLogger(__name__)

_KEEP: Final = 64
"""Indexes kept in memory (least recently used dropped first)."""


class KnowledgeUnavailableError(OrchestratorError):
    """No database: knowledge bases are kept only in PostgreSQL."""


class KnowledgeBaseNotFoundError(OrchestratorError):
    """The tenant has no knowledge base with this id."""


@dataclass(frozen=True, slots=True)
class Found:
    """A chunk found for a query."""

    kb_id: str
    document_id: str
    chunk_id: str
    heading: str
    text: str
    score: float


@dataclass(slots=True)
class _Cached:
    revision: int
    index: LexicalIndex
    documents: dict[str, str]
    """Chunk id → document id."""


class Knowledge:
    """The tenants' knowledge bases (bound to the store at start)."""

    def __init__(self) -> None:
        self._store: SqlKnowledgeStore | None = None
        self._indexes: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._warming: asyncio.Task[object] | None = None

    def warm(self) -> None:
        """Load the index library off the event loop, once, ahead of the first search (a
        call whose agent has knowledge bases starts: its first turn comes seconds later)."""
        if self._warming is None:
            self._warming = asyncio.create_task(asyncio.to_thread(warm_up))

    def bind(self, store: SqlKnowledgeStore) -> None:
        """Use ``store`` from now on."""
        self._store = store

    @property
    def store(self) -> SqlKnowledgeStore:
        """The store.

        Raises:
            KnowledgeUnavailableError: not bound (no database).
        """
        if self._store is None:
            raise KnowledgeUnavailableError("knowledge bases need the orchestrator's database")
        return self._store

    async def create(self, tenant_id: str, kb_id: str, name: str, description: str) -> (
        KnowledgeBase | None
    ):  # fmt: skip
        """A new base (None: it exists)."""
        return await self.store.create_base(tenant_id, kb_id, name, description, utc_now())

    async def get(self, tenant_id: str, kb_id: str) -> KnowledgeBase:
        """One base.

        Raises:
            KnowledgeBaseNotFoundError: the tenant has none with this id.
        """
        found = await self.store.bases(tenant_id, kb_id)
        if not found:
            raise KnowledgeBaseNotFoundError(f"no knowledge base {kb_id!r}")
        return found[0]

    async def listing(self, tenant_id: str) -> list[KnowledgeBase]:
        """The tenant's bases."""
        return await self.store.bases(tenant_id)

    async def delete(self, tenant_id: str, kb_id: str) -> KnowledgeBase:
        """Delete a base and everything in it; returns it as it was."""
        base = await self.get(tenant_id, kb_id)
        await self.store.delete_base(tenant_id, kb_id)
        self._indexes.pop((tenant_id, kb_id), None)
        return base

    async def documents(self, tenant_id: str, kb_id: str) -> list[Document]:
        """A base's documents."""
        await self.get(tenant_id, kb_id)
        return await self.store.documents(tenant_id, kb_id)

    async def put(self, request: PutDocument, now: datetime | None = None) -> tuple[Document, bool]:
        """Add or replace a document; ``(document, changed)``.

        Raises:
            KnowledgeBaseNotFoundError: no such base.
            DocumentError: the file cannot be read (nothing stored changes).
        """
        t, kb = request.tenant_id, request.kb_id
        await self.get(t, kb)
        digest = content_hash(request.data)
        existing = await self.store.documents(t, kb, request.document_id)
        if existing and existing[0].content_hash == digest:
            return existing[0], False
        # In a thread: a large PDF takes seconds to read, and this loop runs live calls.
        chunks = await asyncio.to_thread(_chunks_of, request, digest)
        now = now or utc_now()
        document = Document(
            document_id=request.document_id, filename=request.filename, format=request.format,
            content_hash=digest, size_bytes=len(request.data), chunks=len(chunks),
            created_at=now, updated_at=now,
        )  # fmt: skip
        stored = await self.store.replace_document(t, kb, document, chunks)
        if stored is None:
            raise KnowledgeBaseNotFoundError(f"no knowledge base {kb!r}")
        log.info("document indexed", extra={"tenant_id": t, "kb_id": kb, "chunks": len(chunks),
                                            "changed": stored[1]})  # fmt: skip
        return stored

    async def remove(self, tenant_id: str, kb_id: str, document_id: str) -> Document | None:
        """Delete a document (None: there was none)."""
        await self.get(tenant_id, kb_id)
        return await self.store.delete_document(tenant_id, kb_id, document_id, utc_now())

    async def search(
        self, tenant_id: str, kb_ids: list[str], query: str, top_k: int
    ) -> list[Found]:
        """The best ``top_k`` chunks of the tenant's bases ``kb_ids`` for ``query``, best
        first; a base the tenant does not have contributes nothing."""
        found: list[Found] = []
        for kb_id in dict.fromkeys(kb_ids):
            cached = await self._index(tenant_id, kb_id)
            if cached is None:
                continue
            for hit in cached.index.search(query, top_k):
                c = hit.chunk
                found.append(Found(kb_id, cached.documents[c.chunk_id], c.chunk_id, c.heading,
                                   c.text, hit.score))  # fmt: skip
        found.sort(key=lambda f: -f.score)
        return found[:top_k]

    async def _index(self, tenant_id: str, kb_id: str) -> _Cached | None:
        key = (tenant_id, kb_id)
        revision = await self.store.revision(tenant_id, kb_id)
        if revision is None:
            self._indexes.pop(key, None)
            return None
        cached = self._indexes.get(key)
        if cached is None or cached.revision != revision:
            revision, rows = await self.store.chunks(tenant_id, kb_id)
            self.warm()
            assert self._warming is not None
            await self._warming
            index = await asyncio.to_thread(LexicalIndex, [chunk for _, chunk in rows])
            cached = _Cached(revision, index, {c.chunk_id: d for d, c in rows})
            self._indexes[key] = cached
            log.info("knowledge index built", extra={"tenant_id": tenant_id, "kb_id": kb_id,
                                                     "chunks": len(index)})  # fmt: skip
        self._indexes.move_to_end(key)
        while len(self._indexes) > _KEEP:
            self._indexes.popitem(last=False)
        return cached


def _chunks_of(request: PutDocument, digest: str) -> list[Chunk]:
    blocks = parse_document(request.data, request.format)
    return chunk_blocks(blocks, request.document_id, digest)


__all__ = ["DocumentError", "Found", "Knowledge", "KnowledgeBaseNotFoundError",
           "KnowledgeUnavailableError"]  # fmt: skip
