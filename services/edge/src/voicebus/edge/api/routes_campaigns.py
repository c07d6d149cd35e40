"""Campaigns: forwarded to the campaigns service (``vb.rpc.campaigns.*``)."""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

import base64
import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final, Literal, Self

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import StreamingResponse

from voicebus.contracts import campaigns as c
from voicebus.contracts.ids import new_id
from voicebus.contracts.text import refuse_control
from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError, FieldProblem
from voicebus.edge.api.idempotency import IdempotencyKey, idempotent
from voicebus.edge.api.uploads import LineTooLongError, line_chunks
from voicebus.edge.tenancy.keys import Scope

CampaignIdPath = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Campaign id.", examples=["cmp-42"])
]
MAX_UPLOAD_BYTES: Final = 64 * 1024 * 1024
_ACTIONS: Final = {
    "start": c.CAMPAIGNS_START,
    "pause": c.CAMPAIGNS_PAUSE,
    "resume": c.CAMPAIGNS_RESUME,
    "cancel": c.CAMPAIGNS_CANCEL,
}
_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}, "description": "CSV."}}
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


class DncBody(BaseModel):
    """Numbers to add to (or remove from) a do-not-call list."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Null: the tenant's list."
    )
    numbers: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        min_length=1, max_length=10000, description="Numbers with a + prefix. Personal data."
    )
    reason: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _no_control_characters(self) -> Self:
        refuse_control(self.__dict__)  # the contracts' rule: a 422 naming the field
        return self


def campaigns_router(edge: Edge) -> APIRouter:
    """``/campaigns`` and ``/dnc``."""
    router = APIRouter(tags=["campaigns"], responses=ERROR_RESPONSES)
    reader = edge.auth.tenant(Scope.CAMPAIGNS_READ)
    writer = edge.auth.tenant(Scope.CAMPAIGNS_WRITE)
    Reader = Annotated[TenantPrincipal, Depends(reader)]  # noqa: N806 - a type alias
    Writer = Annotated[TenantPrincipal, Depends(writer)]  # noqa: N806 - a type alias
    owners = edge.owners

    async def _campaign(subject: str, tenant_id: str, campaign_id: str) -> c.Campaign:
        ref = c.CampaignRef(tenant_id=tenant_id, campaign_id=campaign_id)
        reply = await owners.ask(subject, ref, c.CampaignReply)
        if reply.campaign is None:
            raise ApiError(404, "campaign_not_found", f"no campaign {campaign_id!r}")
        return reply.campaign

    @router.post("/campaigns", status_code=201, response_model=c.Campaign)
    async def create_campaign(
        spec: c.CampaignSpec, who: Writer, idempotency_key: IdempotencyKey = None
    ) -> Any:
        """Create a campaign (draft); upload contacts, then start it."""
        return await idempotent(
            edge.store, who.tenant_id, "campaigns.create", idempotency_key, spec, 201,
            lambda: _create(spec, who),
        )  # fmt: skip

    async def _create(spec: c.CampaignSpec, who: TenantPrincipal) -> c.Campaign:
        request = c.CreateCampaign(tenant_id=who.tenant_id, spec=spec)
        reply = await owners.ask(c.CAMPAIGNS_CREATE, request, c.CampaignReply)
        if reply.campaign is None:
            raise ApiError(502, "bad_owner_reply", "the campaigns service returned no campaign")
        return reply.campaign

    @router.get("/campaigns", response_model=list[c.Campaign])
    async def list_campaigns(
        who: Reader, status: Annotated[c.CampaignStatus | None, Query()] = None
    ) -> list[c.Campaign]:
        """The tenant's campaigns."""
        request = c.ListCampaigns(tenant_id=who.tenant_id, status=status)
        return (await owners.ask(c.CAMPAIGNS_LIST, request, c.CampaignListReply)).campaigns

    @router.get("/campaigns/{campaign_id}", response_model=c.Campaign)
    async def get_campaign(campaign_id: CampaignIdPath, who: Reader) -> c.Campaign:
        """One campaign."""
        return await _campaign(c.CAMPAIGNS_GET, who.tenant_id, campaign_id)

    @router.get("/campaigns/{campaign_id}/progress", response_model=c.Progress)
    async def progress(campaign_id: CampaignIdPath, who: Reader) -> c.Progress:
        """Contacts by state, attempts by outcome, calls in flight."""
        ref = c.CampaignRef(tenant_id=who.tenant_id, campaign_id=campaign_id)
        reply = await owners.ask(c.CAMPAIGNS_PROGRESS, ref, c.ProgressReply)
        if reply.progress is None:
            raise ApiError(404, "campaign_not_found", f"no campaign {campaign_id!r}")
        return reply.progress

    @router.get("/campaigns/{campaign_id}/report", response_class=StreamingResponse, responses=_CSV)
    async def report(campaign_id: CampaignIdPath, who: Reader) -> StreamingResponse:
        """Every contact's final line, as CSV (fetched page by page)."""
        first = await _page(who.tenant_id, campaign_id, 0)

        async def rows() -> AsyncIterator[str]:
            yield _csv_line(c.REPORT_COLUMNS)
            page = first
            while True:
                for row in page.rows:
                    yield _csv_line(c.report_cells(row))  # formula injection escaped
                if page.next_after is None or not page.rows:
                    return
                page = await _page(who.tenant_id, campaign_id, page.next_after)

        return StreamingResponse(rows(), media_type="text/csv")

    async def _page(tenant_id: str, campaign_id: str, after: int) -> c.ReportReply:
        request = c.ReportPageRequest(
            tenant_id=tenant_id, campaign_id=campaign_id, after_contact_id=after
        )
        return await owners.ask(c.CAMPAIGNS_REPORT, request, c.ReportReply)

    @router.post(
        "/campaigns/{campaign_id}/contacts",
        response_model=c.UploadReport,
        openapi_extra=_UPLOAD_BODY,
    )
    async def upload_contacts(
        campaign_id: CampaignIdPath, request: Request, who: Writer
    ) -> c.UploadReport:
        """Load contacts from a CSV (header line first) or JSON Lines body."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        fmt = c.UploadFormat.JSON if "json" in kind else c.UploadFormat.CSV
        body = await _read_limited(request)
        if not body.strip():
            raise ApiError(
                422,
                "invalid_request",
                "body: the file is empty",
                fields=[FieldProblem(field="body", message="empty")],
            )
        if not body.endswith(b"\n"):
            body += b"\n"
        upload_id, header = new_id(), None
        try:
            pieces = list(line_chunks(body))
        except LineTooLongError as err:
            raise ApiError(
                422,
                "invalid_request",
                f"body: {err}",
                fields=[FieldProblem(field="body", message=str(err))],
            ) from None
        report: c.UploadReport | None = None
        for seq, (first_line, data) in enumerate(pieces):
            chunk = c.UploadChunk(
                tenant_id=who.tenant_id,
                campaign_id=campaign_id,
                upload_id=upload_id,
                format=fmt,
                seq=seq,
                first_line=first_line,
                header=header,
                data=base64.b64encode(data),
                final=seq == len(pieces) - 1,
            )
            # Not retried on a slow answer: a chunk applied twice would count its rejected
            # rows twice in the upload's totals (the contacts themselves merge by number).
            reply = await owners.ask(c.CONTACTS_UPLOAD, chunk, c.UploadReply, idempotent=False)
            report = reply.report
            header = report.header if report is not None else header
        if report is None:
            raise ApiError(502, "bad_owner_reply", "the campaigns service returned no report")
        return report

    # After /contacts: a static path must win over the {action} placeholder.
    @router.post("/campaigns/{campaign_id}/{action}", response_model=c.Campaign)
    async def act(
        campaign_id: CampaignIdPath,
        action: Literal["start", "pause", "resume", "cancel"],
        who: Writer,
    ) -> c.Campaign:
        """Start, pause, resume or cancel a campaign (409 when the state forbids it)."""
        return await _campaign(_ACTIONS[action], who.tenant_id, campaign_id)

    @router.get("/dnc", response_model=c.DncListReply)
    async def dnc_list(
        who: Reader,
        campaign_id: Annotated[
            str | None,
            Query(
                pattern=r"^[A-Za-z0-9_-]{1,64}$",
                description="A campaign's list; omitted: the tenant's.",
            ),
        ] = None,
        after: Annotated[
            str | None, Query(max_length=32, description="next_after of the previous page.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> c.DncListReply:
        """The tenant's (or a campaign's) do-not-call list, one page in number order."""
        request = c.DncListRequest(
            tenant_id=who.tenant_id, campaign_id=campaign_id, after=after, limit=limit
        )
        return await owners.ask(c.DNC_LIST, request, c.DncListReply)

    @router.post("/dnc", response_model=c.DncReply)
    async def dnc_add(body: Annotated[DncBody, Body()], who: Writer) -> c.DncReply:
        """Add numbers to the tenant's (or a campaign's) do-not-call list."""
        return await _dnc(c.DNC_ADD, body, who)

    @router.post("/dnc/remove", response_model=c.DncReply)
    async def dnc_remove(body: Annotated[DncBody, Body()], who: Writer) -> c.DncReply:
        """Remove numbers from a do-not-call list."""
        return await _dnc(c.DNC_REMOVE, body, who)

    async def _dnc(subject: str, body: DncBody, who: TenantPrincipal) -> c.DncReply:
        request = c.DncChange(tenant_id=who.tenant_id, **body.model_dump())
        return await owners.ask(subject, request, c.DncReply)

    return router


_CONTACTS_PATH: Final = re.compile(r"^/api/v1/campaigns/[A-Za-z0-9_-]{1,64}/contacts$")


def is_contacts_upload(path: str) -> bool:
    """Whether ``path`` is the contacts upload, which limits its body itself."""
    return _CONTACTS_PATH.fullmatch(path) is not None


async def _read_limited(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > MAX_UPLOAD_BYTES:
            raise ApiError(413, "too_large", f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
        chunks.append(part)
    return b"".join(chunks)


def _csv_line(values: Any) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()
