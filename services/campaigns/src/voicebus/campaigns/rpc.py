"""Request/reply: campaigns, contacts, DNC lists (``vb.rpc.campaigns.*``).

Each responder parses, calls the store, answers; a bad request is a 422
naming the field, an unknown campaign a 404, a forbidden move a 409.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from voicebus.campaigns import events as ev
from voicebus.campaigns import importer, phones, policy, reports
from voicebus.campaigns.clock import Clock
from voicebus.campaigns.publisher import Publisher
from voicebus.campaigns.store import Store
from voicebus.contracts import campaigns as api
from voicebus.contracts.rpc import RpcError

log = logging.getLogger(__name__)

QUEUE = "campaigns-rpc"
BAD_REQUESTS = Counter("voicebus_campaigns_bad_requests", "Requests refused, by subject.", ["rpc"])
ROWS = Counter("voicebus_campaigns_upload_rows", "Uploaded rows, by result.", ["result"])

Req = TypeVar("Req", bound=BaseModel)


def _error(status: int, code: str, message: str) -> RpcError:
    return RpcError(status=status, code=code, message=message[:1024])


def _parse(model: type[Req], raw: bytes) -> Req | RpcError:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return _error(422, "invalid_request", problems)


def _not_found(campaign_id: str) -> RpcError:
    return _error(404, "campaign_not_found", f"no campaign {campaign_id!r}")


class Responders:
    """The handlers behind every campaigns subject.

    Args:
        store: the database.
        publisher: for the DNC events of an upload.
        clock: business time.
        source: ``campaigns/<instance>``.
        default_region: region of numbers written without ``+``.
    """

    def __init__(
        self, store: Store, publisher: Publisher, clock: Clock, source: str, default_region: str
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.source = source
        self.region = default_region

    async def create(self, req: api.CreateCampaign) -> api.CampaignReply:
        """Store a draft."""
        campaign = await self.store.create(req.tenant_id, req.spec, self.clock.now())
        return api.CampaignReply(ok=True, campaign=campaign)

    async def get(self, req: api.CampaignRef) -> api.CampaignReply:
        """One campaign."""
        campaign = await self.store.get(req.tenant_id, req.campaign_id)
        if campaign is None:
            return api.CampaignReply(ok=False, error=_not_found(req.campaign_id))
        return api.CampaignReply(ok=True, campaign=campaign)

    async def list(self, req: api.ListCampaigns) -> api.CampaignListReply:
        """The tenant's campaigns."""
        found = await self.store.campaigns(req.tenant_id, req.status)
        return api.CampaignListReply(ok=True, campaigns=found)

    async def move(self, verb: str, req: api.CampaignRef) -> api.CampaignReply:
        """start / pause / resume / cancel."""
        current = await self.store.get(req.tenant_id, req.campaign_id)
        if current is None:
            return api.CampaignReply(ok=False, error=_not_found(req.campaign_id))
        allowed = policy.TRANSITIONS[verb]
        target = policy.transition(verb, current.status)
        moved = None
        if target is not None:
            moved = await self.store.set_status(
                req.tenant_id, req.campaign_id, allowed.keys(), target, self.clock.now()
            )
        if moved is None:
            message = f"cannot {verb} a campaign that is {current.status.value}"
            return api.CampaignReply(ok=False, error=_error(409, "invalid_transition", message))
        return api.CampaignReply(ok=True, campaign=moved)

    async def progress(self, req: api.CampaignRef) -> api.ProgressReply:
        """Live counts."""
        found = await reports.progress(self.store, req.tenant_id, req.campaign_id)
        if found is None:
            return api.ProgressReply(ok=False, error=_not_found(req.campaign_id))
        return api.ProgressReply(ok=True, progress=found)

    async def report(self, req: api.ReportPageRequest) -> api.ReportReply:
        """One page of the per-contact report."""
        if await self.store.get(req.tenant_id, req.campaign_id) is None:
            return api.ReportReply(ok=False, error=_not_found(req.campaign_id))
        rows = await reports.report(
            self.store, req.tenant_id, req.campaign_id, req.after_contact_id, req.limit
        )
        after = rows[-1].contact_id if len(rows) == req.limit else None
        return api.ReportReply(ok=True, rows=rows, next_after=after)

    async def upload(self, req: api.UploadChunk) -> api.UploadReply:
        """Load one chunk of a contact file; the reply holds the upload's running totals."""
        if await self.store.get(req.tenant_id, req.campaign_id) is None:
            return api.UploadReply(ok=False, error=_not_found(req.campaign_id))
        try:
            parsed = importer.parse_chunk(
                req.data, req.format, req.first_line, req.header, self.region
            )
        except importer.UploadError as exc:
            return api.UploadReply(ok=False, error=_error(422, "invalid_file", str(exc)))
        report, blocked = await self.store.upload(
            req.tenant_id,
            req.campaign_id,
            req.upload_id,
            parsed.rows,
            parsed.errors,
            parsed.read,
            parsed.header,
            self.clock.now(),
        )
        ROWS.labels("loaded").inc(len(parsed.rows))
        ROWS.labels("rejected").inc(len(parsed.errors))
        env = ev.Env(req.tenant_id, req.campaign_id, self.source)
        await self.publisher.events(
            [ev.dnc_checked(env, b.contact_id, b.phone, b.scope, stage="upload") for b in blocked]
        )
        return api.UploadReply(ok=True, report=report)

    async def dnc(self, verb: str, req: api.DncChange) -> api.DncReply:
        """Add numbers to, or remove them from, a tenant's or a campaign's list."""
        good: list[str] = []
        bad: list[str] = []
        for raw in req.numbers:
            try:
                good.append(phones.normalize(raw, self.region))
            except phones.InvalidNumberError:
                bad.append(raw[:32])
        if req.campaign_id and await self.store.get(req.tenant_id, req.campaign_id) is None:
            return api.DncReply(ok=False, error=_not_found(req.campaign_id))
        if verb == "add":
            changed = await self.store.dnc_add(
                req.tenant_id, req.campaign_id, good, req.reason, self.clock.now()
            )
        else:
            changed = await self.store.dnc_remove(req.tenant_id, req.campaign_id, good)
        return api.DncReply(ok=True, changed=changed, invalid=bad)


def _responder(
    broker: NatsBroker,
    subject: str,
    model: type[Req],
    handle: Callable[[Req], Awaitable[Any]],
    reply: type[BaseModel],
) -> None:
    name = subject.rsplit(".", 2)[-2:]

    @broker.subscriber(subject, queue=QUEUE, description=f"{reply.__name__} for {subject}.")
    async def respond(msg: NatsMessage) -> Any:
        request = _parse(model, msg.body)
        if isinstance(request, RpcError):
            BAD_REQUESTS.labels(".".join(name)).inc()
            return reply.model_validate({"ok": False, "error": request})
        return await handle(request)


def register(broker: NatsBroker, r: Responders) -> None:
    """Declare every campaigns responder on ``broker`` (one queue group: any instance answers)."""
    _responder(broker, api.CAMPAIGNS_CREATE, api.CreateCampaign, r.create, api.CampaignReply)
    _responder(broker, api.CAMPAIGNS_GET, api.CampaignRef, r.get, api.CampaignReply)
    _responder(broker, api.CAMPAIGNS_LIST, api.ListCampaigns, r.list, api.CampaignListReply)
    for verb, subject in (
        ("start", api.CAMPAIGNS_START),
        ("pause", api.CAMPAIGNS_PAUSE),
        ("resume", api.CAMPAIGNS_RESUME),
        ("cancel", api.CAMPAIGNS_CANCEL),
    ):
        _responder(
            broker,
            subject,
            api.CampaignRef,
            lambda req, verb=verb: r.move(verb, req),  # type: ignore[misc]
            api.CampaignReply,
        )
    _responder(broker, api.CAMPAIGNS_PROGRESS, api.CampaignRef, r.progress, api.ProgressReply)
    _responder(broker, api.CAMPAIGNS_REPORT, api.ReportPageRequest, r.report, api.ReportReply)
    _responder(broker, api.CONTACTS_UPLOAD, api.UploadChunk, r.upload, api.UploadReply)
    _responder(broker, api.DNC_ADD, api.DncChange, lambda req: r.dnc("add", req), api.DncReply)
    _responder(
        broker, api.DNC_REMOVE, api.DncChange, lambda req: r.dnc("remove", req), api.DncReply
    )
