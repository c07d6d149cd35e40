"""Knowledge bases: a tenant's document collections, owned by the orchestrator.

The edge forwards ``/api/v1/knowledge-bases`` here (``vb.rpc.orchestrator.knowledge.*``).
A document travels whole in one request (base64 in JSON), so its size is bounded by
:data:`MAX_DOCUMENT_BYTES`, which keeps the request under NATS' 1 MiB payload.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated, Final

from pydantic import ConfigDict, Field

from voicebus.contracts import subjects
from voicebus.contracts.events._base import Data, TenantId
from voicebus.contracts.rpc import Reply

KB_CREATE: Final = subjects.rpc("orchestrator", "knowledge", "create")
KB_LIST: Final = subjects.rpc("orchestrator", "knowledge", "list")
KB_GET: Final = subjects.rpc("orchestrator", "knowledge", "get")
KB_DELETE: Final = subjects.rpc("orchestrator", "knowledge", "delete")
KB_SEARCH: Final = subjects.rpc("orchestrator", "knowledge", "search")
DOCUMENTS_PUT: Final = subjects.rpc("orchestrator", "knowledge", "put_document")
DOCUMENTS_LIST: Final = subjects.rpc("orchestrator", "knowledge", "list_documents")
DOCUMENTS_DELETE: Final = subjects.rpc("orchestrator", "knowledge", "delete_document")

MAX_DOCUMENT_BYTES: Final = 512 * 1024
"""Largest document: base64 (4/3) plus the envelope stay under NATS' 1 MiB payload."""

KB_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
DOCUMENT_ID_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,128}$"

KbId = Annotated[
    str, Field(pattern=KB_ID_PATTERN, description="Knowledge base id.", examples=["faq"])
]
DocumentId = Annotated[
    str, Field(pattern=DOCUMENT_ID_PATTERN, description="Document id.", examples=["returns"])
]


class DocumentFormat(StrEnum):
    """How a document is read."""

    MARKDOWN = "md"
    TEXT = "txt"
    HTML = "html"
    PDF = "pdf"
    CSV = "csv"
    JSON = "json"


_BY_SUFFIX: Final = {
    ".md": DocumentFormat.MARKDOWN, ".markdown": DocumentFormat.MARKDOWN,
    ".txt": DocumentFormat.TEXT, ".text": DocumentFormat.TEXT,
    ".html": DocumentFormat.HTML, ".htm": DocumentFormat.HTML,
    ".pdf": DocumentFormat.PDF, ".csv": DocumentFormat.CSV, ".json": DocumentFormat.JSON,
}  # fmt: skip
_BY_MEDIA_TYPE: Final = {
    "text/markdown": DocumentFormat.MARKDOWN, "text/x-markdown": DocumentFormat.MARKDOWN,
    "text/plain": DocumentFormat.TEXT, "text/html": DocumentFormat.HTML,
    "application/xhtml+xml": DocumentFormat.HTML, "application/pdf": DocumentFormat.PDF,
    "text/csv": DocumentFormat.CSV, "application/json": DocumentFormat.JSON,
}  # fmt: skip


def format_of(filename: str | None, media_type: str | None) -> DocumentFormat | None:
    """A document's format from its file name's suffix, else its media type (None: unknown).

    The suffix wins: clients often send ``application/octet-stream`` for any file.
    """
    if filename:
        found = _BY_SUFFIX.get(PurePosixPath(filename).suffix.lower())
        if found is not None:
            return found
    kind = (media_type or "").split(";")[0].strip().lower()
    return _BY_MEDIA_TYPE.get(kind)


class KnowledgeBaseRef(Data):
    """Request body of ``knowledge.get|delete|list_documents``."""

    tenant_id: TenantId
    kb_id: KbId


class CreateKnowledgeBase(Data):
    """Request body of ``vb.rpc.orchestrator.knowledge.create``."""

    tenant_id: TenantId
    kb_id: KbId
    name: str = Field(default="", max_length=256, description="Display name.",
                      examples=["Store FAQ"])  # fmt: skip
    description: str = Field(default="", max_length=2048, description="For people.")


class ListKnowledgeBases(Data):
    """Request body of ``vb.rpc.orchestrator.knowledge.list``."""

    tenant_id: TenantId


class KnowledgeBase(Data):
    """A tenant's document collection."""

    kb_id: KbId
    name: str = Field(default="", max_length=256, examples=["Store FAQ"])
    description: str = Field(default="", max_length=2048)
    documents: int = Field(default=0, ge=0, description="Documents held.", examples=[3])
    chunks: int = Field(default=0, ge=0, description="Chunks indexed.", examples=[42])
    created_at: datetime
    updated_at: datetime


class KnowledgeBaseReply(Reply):
    """Reply of ``knowledge.create|get|delete`` (delete: the base removed)."""

    knowledge_base: KnowledgeBase | None = Field(default=None, description="When ok.")


class KnowledgeBasesPage(Reply):
    """Reply of ``vb.rpc.orchestrator.knowledge.list``."""

    knowledge_bases: list[KnowledgeBase] = Field(default_factory=list, description="By id.")


class PutDocument(Data):
    """Request body of ``knowledge.put_document``: a whole document (base64 in JSON).

    The same content again (by SHA-256) changes nothing and re-indexes nothing.
    """

    model_config = ConfigDict(
        frozen=True, extra="ignore", ser_json_bytes="base64", val_json_bytes="base64"
    )

    tenant_id: TenantId
    kb_id: KbId
    document_id: DocumentId
    filename: str = Field(default="", max_length=256, description="The uploaded file's name.",
                          examples=["returns.md"])  # fmt: skip
    format: DocumentFormat = Field(description="How to read it.", examples=["md"])
    data: bytes = Field(max_length=MAX_DOCUMENT_BYTES, description="The file (base64).")


class DocumentRef(Data):
    """Request body of ``knowledge.delete_document``."""

    tenant_id: TenantId
    kb_id: KbId
    document_id: DocumentId


class Document(Data):
    """A document of a knowledge base, as indexed."""

    document_id: DocumentId
    filename: str = Field(default="", max_length=256, examples=["returns.md"])
    format: DocumentFormat = Field(examples=["md"])
    content_hash: str = Field(
        max_length=64, description="SHA-256 of the file, hex; the same hash is not re-indexed.",
        examples=["3f9a1c2b" + "0" * 56],
    )  # fmt: skip
    size_bytes: int = Field(ge=0, examples=[2048])
    chunks: int = Field(ge=0, description="Chunks cut from it.", examples=[12])
    created_at: datetime
    updated_at: datetime


class DocumentReply(Reply):
    """Reply of ``knowledge.put_document|delete_document``."""

    document: Document | None = Field(default=None, description="When ok.")
    changed: bool = Field(
        default=False,
        description="put: the content was new, so the document was (re)indexed; false: "
        "the same content was already there.",
    )


class DocumentsPage(Reply):
    """Reply of ``knowledge.list_documents``."""

    documents: list[Document] = Field(default_factory=list, description="By id.")


class SearchKnowledgeBase(Data):
    """Request body of ``vb.rpc.orchestrator.knowledge.search``."""

    tenant_id: TenantId
    kb_id: KbId
    query: str = Field(min_length=1, max_length=2048, description="What to look for.",
                       examples=["how long do refunds take"])  # fmt: skip
    top_k: int = Field(default=3, ge=1, le=16, description="Chunks wanted.")


class KnowledgeHit(Data):
    """One chunk found."""

    chunk_id: str = Field(max_length=200, examples=["returns.3f9a1c2b.2"])
    document_id: DocumentId
    heading: str = Field(default="", max_length=512, description="The section it is under.",
                         examples=["Refunds"])  # fmt: skip
    text: str = Field(max_length=4096, description="The chunk (a few sentences).",
                      examples=["Refunds take 14 days."])  # fmt: skip
    score: float = Field(description="BM25 score (higher is closer).", examples=[2.71])


class SearchReply(Reply):
    """Reply of ``vb.rpc.orchestrator.knowledge.search``."""

    hits: list[KnowledgeHit] = Field(default_factory=list, description="Best first.")
