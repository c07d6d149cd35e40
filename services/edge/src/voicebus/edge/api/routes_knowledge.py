"""Knowledge bases of a tenant: document collections its agents answer from.

The orchestrator owns them (``vb.rpc.orchestrator.knowledge.*``): it parses, chunks and
indexes each document. A document is uploaded as ``multipart/form-data`` (``file``) or
as the raw body of a ``PUT``; its format comes from the file name's suffix, else the
media type, else ``?format=``. At most :data:`MAX_DOCUMENT_BYTES` (413 above).
"""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from voicebus.contracts import knowledge as k
from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError, ErrorBody, FieldProblem
from voicebus.edge.api.routes_agents import with_fields
from voicebus.edge.tenancy.keys import Scope

MAX_DOCUMENT_BYTES: Final = k.MAX_DOCUMENT_BYTES
UPLOAD_TIMEOUT_S: Final = 30.0
"""Parsing and indexing a large PDF takes seconds on a busy host."""

KbIdPath = Annotated[
    str, Path(pattern=k.KB_ID_PATTERN, description="Knowledge base id.", examples=["faq"])
]
DocumentIdPath = Annotated[
    str,
    Path(pattern=k.DOCUMENT_ID_PATTERN, description="Document id.", examples=["returns"]),
]
_FORMATS: Final = ", ".join(f.value for f in k.DocumentFormat)
_MEDIA_TYPES: Final = ("text/markdown", "text/plain", "text/html", "application/pdf", "text/csv",
                       "application/json", "application/octet-stream")  # fmt: skip
_RAW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"The document ({_FORMATS}), at most {MAX_DOCUMENT_BYTES} bytes.",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}} for media in _MEDIA_TYPES
        },
    }
}


class NewKnowledgeBase(BaseModel):
    """A knowledge base to create."""

    model_config = ConfigDict(extra="forbid")

    kb_id: str = Field(pattern=k.KB_ID_PATTERN, description="Its id (agents name it).",
                       examples=["faq"])  # fmt: skip
    name: str = Field(default="", max_length=256, examples=["Store FAQ"])
    description: str = Field(default="", max_length=2048)


class SearchBody(BaseModel):
    """A search, as an agent would run it."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2048, examples=["how long do refunds take"])
    top_k: int = Field(default=3, ge=1, le=16)


class DocumentUpload(BaseModel):
    """An uploaded document as indexed."""

    document: k.Document
    changed: bool = Field(
        description="The content was new (parsed, chunked, re-indexed); false: the same "
        "content (SHA-256) was already there, nothing was done."
    )


_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The tenant has a base with this id."}
}
_UPLOADED: dict[int | str, dict[str, Any]] = {
    201: {"model": DocumentUpload, "description": "New content: parsed, chunked, indexed."},
    413: {"model": ErrorBody, "description": f"Larger than {MAX_DOCUMENT_BYTES} bytes."},
}


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_request", f"{field}: {message}",
                    fields=[FieldProblem(field=field, message=message)])  # fmt: skip


def _document_id(filename: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", PurePosixPath(filename).stem).strip("-.")[:128]
    if not stem:
        raise _invalid("document_id", "give one: the file name has none to offer")
    return stem


def _format(filename: str, media_type: str | None, given: str | None) -> k.DocumentFormat:
    if given:
        try:
            return k.DocumentFormat(given.lower())
        except ValueError:
            raise _invalid("format", f"unknown format {given!r} (known: {_FORMATS})") from None
    found = k.format_of(filename, media_type)
    if found is None:
        raise _invalid(
            "file",
            f"unknown format of {filename or 'the body'!r}: name it "
            f"with a suffix, a media type or ?format= (known: {_FORMATS})",
        )
    return found


def knowledge_router(edge: Edge) -> APIRouter:
    """``/knowledge-bases``."""
    not_found: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorBody, "description": "No such base (or another tenant's)."}
    }
    router = APIRouter(prefix="/knowledge-bases", tags=["knowledge"],
                       responses={**ERROR_RESPONSES, **not_found})  # fmt: skip
    reader = edge.auth.tenant(Scope.AGENTS_READ)
    writer = edge.auth.tenant(Scope.AGENTS_WRITE)
    owners = edge.owners
    Reader = Annotated[TenantPrincipal, Depends(reader)]  # noqa: N806 - a type alias
    Writer = Annotated[TenantPrincipal, Depends(writer)]  # noqa: N806 - a type alias

    async def ask(subject: str, request: BaseModel, reply: type[Any], **kw: Any) -> Any:
        try:
            return await owners.ask(subject, request, reply, **kw)
        except ApiError as err:
            raise with_fields(err) from None

    def base(reply: k.KnowledgeBaseReply) -> k.KnowledgeBase:
        if reply.knowledge_base is None:
            raise ApiError(502, "bad_owner_reply", "the orchestrator returned no knowledge base")
        return reply.knowledge_base

    @router.get("", response_model=list[k.KnowledgeBase])
    async def list_bases(who: Reader) -> list[k.KnowledgeBase]:
        """The tenant's knowledge bases."""
        request = k.ListKnowledgeBases(tenant_id=who.tenant_id)
        return list((await ask(k.KB_LIST, request, k.KnowledgeBasesPage)).knowledge_bases)

    @router.post("", status_code=201, response_model=k.KnowledgeBase, responses=_TAKEN)
    async def create_base(body: NewKnowledgeBase, who: Writer) -> k.KnowledgeBase:
        """Create a knowledge base (409: the id is taken)."""
        request = k.CreateKnowledgeBase(tenant_id=who.tenant_id, **body.model_dump())
        return base(await ask(k.KB_CREATE, request, k.KnowledgeBaseReply, idempotent=False))

    @router.get("/{kb_id}", response_model=k.KnowledgeBase)
    async def get_base(kb_id: KbIdPath, who: Reader) -> k.KnowledgeBase:
        """One knowledge base with its document and chunk counts."""
        request = k.KnowledgeBaseRef(tenant_id=who.tenant_id, kb_id=kb_id)
        return base(await ask(k.KB_GET, request, k.KnowledgeBaseReply))

    @router.delete("/{kb_id}", response_model=k.KnowledgeBase)
    async def delete_base(kb_id: KbIdPath, who: Writer) -> k.KnowledgeBase:
        """Delete a knowledge base with its documents; returns it as it was."""
        request = k.KnowledgeBaseRef(tenant_id=who.tenant_id, kb_id=kb_id)
        return base(await ask(k.KB_DELETE, request, k.KnowledgeBaseReply))

    @router.post("/{kb_id}/search", response_model=list[k.KnowledgeHit])
    async def search(kb_id: KbIdPath, body: SearchBody, who: Reader) -> list[k.KnowledgeHit]:
        """The chunks an agent would get for ``query``, best first."""
        request = k.SearchKnowledgeBase(tenant_id=who.tenant_id, kb_id=kb_id, **body.model_dump())
        return list((await ask(k.KB_SEARCH, request, k.SearchReply)).hits)

    @router.get("/{kb_id}/documents", response_model=list[k.Document])
    async def list_documents(kb_id: KbIdPath, who: Reader) -> list[k.Document]:
        """A knowledge base's documents."""
        request = k.KnowledgeBaseRef(tenant_id=who.tenant_id, kb_id=kb_id)
        return list((await ask(k.DOCUMENTS_LIST, request, k.DocumentsPage)).documents)

    async def put(
        who: TenantPrincipal, kb_id: str, document_id: str, filename: str,
        fmt: k.DocumentFormat, data: bytes, response: Response,
    ) -> DocumentUpload:  # fmt: skip
        if not data.strip():
            raise _invalid("file", "the document is empty")
        request = k.PutDocument(tenant_id=who.tenant_id, kb_id=kb_id, document_id=document_id,
                                filename=filename[:256], format=fmt, data=data)  # fmt: skip
        reply = await ask(k.DOCUMENTS_PUT, request, k.DocumentReply, idempotent=False,
                          timeout_s=UPLOAD_TIMEOUT_S)  # fmt: skip
        if reply.document is None:
            raise ApiError(502, "bad_owner_reply", "the orchestrator returned no document")
        response.status_code = 201 if reply.changed else 200
        return DocumentUpload(document=reply.document, changed=reply.changed)

    @router.post(
        "/{kb_id}/documents",
        response_model=DocumentUpload,
        responses=_UPLOADED,
    )
    async def upload_document(
        kb_id: KbIdPath,
        file: Annotated[UploadFile, File(description=f"The document ({_FORMATS}).")],
        who: Writer,
        response: Response,
        document_id: Annotated[
            str | None,
            Form(pattern=k.DOCUMENT_ID_PATTERN, description="Its id; from the file name "
                 "when unset. The same id replaces the document."),
        ] = None,
        format: Annotated[
            str | None, Form(description=f"Overrides the file's suffix ({_FORMATS}).")
        ] = None,
    ) -> DocumentUpload:  # fmt: skip
        """Upload a document (multipart): 201 when its content was new and indexed, 200 when
        the same content was already there (nothing re-indexed); 422 naming the file when it
        cannot be read (the base keeps its other documents)."""
        data = await file.read(MAX_DOCUMENT_BYTES + 1)
        if len(data) > MAX_DOCUMENT_BYTES:
            raise ApiError(413, "too_large", f"the file is larger than {MAX_DOCUMENT_BYTES} bytes")
        filename = file.filename or ""
        fmt = _format(filename, file.content_type, format)
        doc_id = document_id or _document_id(filename)
        return await put(who, kb_id, doc_id, filename, fmt, data, response)

    @router.put(
        "/{kb_id}/documents/{document_id}",
        response_model=DocumentUpload,
        responses=_UPLOADED,
        openapi_extra=_RAW_BODY,
    )
    async def put_document(
        kb_id: KbIdPath,
        document_id: DocumentIdPath,
        request: Request,
        who: Writer,
        response: Response,
        filename: Annotated[str, Query(max_length=256, description="The file's name "
                                       "(its suffix names the format).")] = "",
        format: Annotated[
            str | None, Query(description=f"The format ({_FORMATS}).")
        ] = None,
    ) -> DocumentUpload:  # fmt: skip
        """Add or replace a document from the raw body; as the multipart upload."""
        data = await _read_limited(request)
        fmt = _format(filename, request.headers.get("content-type"), format)
        return await put(who, kb_id, document_id, filename, fmt, data, response)

    @router.delete("/{kb_id}/documents/{document_id}", response_model=k.Document)
    async def delete_document(
        kb_id: KbIdPath, document_id: DocumentIdPath, who: Writer
    ) -> k.Document:
        """Delete a document and its chunks (404: none)."""
        request = k.DocumentRef(tenant_id=who.tenant_id, kb_id=kb_id, document_id=document_id)
        reply: k.DocumentReply = await ask(k.DOCUMENTS_DELETE, request, k.DocumentReply)
        if reply.document is None:
            raise ApiError(502, "bad_owner_reply", "the orchestrator returned no document")
        return reply.document

    return router


async def _read_limited(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > MAX_DOCUMENT_BYTES:
            raise ApiError(413, "too_large", f"the file is larger than {MAX_DOCUMENT_BYTES} bytes")
        chunks.append(part)
    return b"".join(chunks)
