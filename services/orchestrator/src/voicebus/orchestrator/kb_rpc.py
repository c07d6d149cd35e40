"""The orchestrator's answers on ``vb.rpc.orchestrator.knowledge.*``.

Another tenant's base is a 404 (every store query names the tenant); an unreadable
document a 422 naming the file and why, with the base's other documents untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from faststream.nats import NatsBroker
from pydantic import BaseModel

from voicebus.contracts import knowledge as k
from voicebus.contracts.rpc import Reply
from voicebus.orchestrator.knowledge import (
    DocumentError,
    Knowledge,
    KnowledgeBaseNotFoundError,
    KnowledgeUnavailableError,
)
from voicebus.runtime.rpc import Conflict, Invalid, NotFound, Unavailable, responder

QUEUE_GROUP = "orchestrator-rpc"
Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=Reply)


def _faults(handler: Callable[[Req], Awaitable[Rep]]) -> Callable[[Req], Awaitable[Rep]]:
    """The domain's errors as the kit's statuses."""

    async def run(request: Req) -> Rep:
        try:
            return await handler(request)
        except KnowledgeBaseNotFoundError as exc:
            raise NotFound(str(exc), code="knowledge_base_not_found") from None
        except KnowledgeUnavailableError as exc:
            raise Unavailable(str(exc), code="database_unavailable") from None

    return run


class KnowledgeResponders:
    """Handlers over :class:`Knowledge`."""

    def __init__(self, knowledge: Knowledge) -> None:
        self._k = knowledge

    async def create(self, request: k.CreateKnowledgeBase) -> k.KnowledgeBaseReply:
        """A new base (409: the id is taken)."""
        base = await self._k.create(request.tenant_id, request.kb_id, request.name,
                                    request.description)  # fmt: skip
        if base is None:
            raise Conflict(f"knowledge base {request.kb_id!r} exists", code="kb_exists")
        return k.KnowledgeBaseReply(ok=True, knowledge_base=base)

    async def listing(self, request: k.ListKnowledgeBases) -> k.KnowledgeBasesPage:
        """The tenant's bases."""
        found = await self._k.listing(request.tenant_id)
        return k.KnowledgeBasesPage(ok=True, knowledge_bases=found)

    async def get(self, request: k.KnowledgeBaseRef) -> k.KnowledgeBaseReply:
        """One base."""
        base = await self._k.get(request.tenant_id, request.kb_id)
        return k.KnowledgeBaseReply(ok=True, knowledge_base=base)

    async def delete(self, request: k.KnowledgeBaseRef) -> k.KnowledgeBaseReply:
        """Delete a base with its documents."""
        base = await self._k.delete(request.tenant_id, request.kb_id)
        return k.KnowledgeBaseReply(ok=True, knowledge_base=base)

    async def search(self, request: k.SearchKnowledgeBase) -> k.SearchReply:
        """The best chunks for a query."""
        await self._k.get(request.tenant_id, request.kb_id)
        found = await self._k.search(request.tenant_id, [request.kb_id], request.query,
                                     request.top_k)  # fmt: skip
        hits = [k.KnowledgeHit(chunk_id=f.chunk_id, document_id=f.document_id,
                               heading=f.heading[:512], text=f.text, score=f.score)
                for f in found]  # fmt: skip
        return k.SearchReply(ok=True, hits=hits)

    async def put_document(self, request: k.PutDocument) -> k.DocumentReply:
        """Add or replace a document (422 naming the file when it cannot be read)."""
        try:
            document, changed = await self._k.put(request)
        except DocumentError as exc:
            name = request.filename or request.document_id
            raise Invalid(f"file: {name}: {exc}", code="unreadable_document") from None
        return k.DocumentReply(ok=True, document=document, changed=changed)

    async def list_documents(self, request: k.KnowledgeBaseRef) -> k.DocumentsPage:
        """A base's documents."""
        found = await self._k.documents(request.tenant_id, request.kb_id)
        return k.DocumentsPage(ok=True, documents=found)

    async def delete_document(self, request: k.DocumentRef) -> k.DocumentReply:
        """Delete a document (404: none)."""
        gone = await self._k.remove(request.tenant_id, request.kb_id, request.document_id)
        if gone is None:
            raise NotFound(f"no document {request.document_id!r}", code="document_not_found")
        return k.DocumentReply(ok=True, document=gone, changed=True)


def register_knowledge(broker: NatsBroker, knowledge: Knowledge) -> None:
    """Declare the knowledge responders on ``broker``."""
    r = KnowledgeResponders(knowledge)
    q = QUEUE_GROUP
    responder(broker, k.KB_CREATE, k.CreateKnowledgeBase, k.KnowledgeBaseReply,
              _faults(r.create), queue=q)  # fmt: skip
    responder(broker, k.KB_LIST, k.ListKnowledgeBases, k.KnowledgeBasesPage,
              _faults(r.listing), queue=q)  # fmt: skip
    responder(broker, k.KB_GET, k.KnowledgeBaseRef, k.KnowledgeBaseReply, _faults(r.get), queue=q)
    responder(broker, k.KB_DELETE, k.KnowledgeBaseRef, k.KnowledgeBaseReply,
              _faults(r.delete), queue=q)  # fmt: skip
    responder(broker, k.KB_SEARCH, k.SearchKnowledgeBase, k.SearchReply,
              _faults(r.search), queue=q)  # fmt: skip
    responder(broker, k.DOCUMENTS_PUT, k.PutDocument, k.DocumentReply,
              _faults(r.put_document), queue=q)  # fmt: skip
    responder(broker, k.DOCUMENTS_LIST, k.KnowledgeBaseRef, k.DocumentsPage,
              _faults(r.list_documents), queue=q)  # fmt: skip
    responder(broker, k.DOCUMENTS_DELETE, k.DocumentRef, k.DocumentReply,
              _faults(r.delete_document), queue=q)  # fmt: skip
