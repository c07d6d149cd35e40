"""Request/reply: campaigns, contacts, DNC lists (``vb.rpc.campaigns.*``).

Each responder parses, calls the store, answers; a bad request is a 422
naming the field, an unknown campaign a 404, a forbidden move a 409.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from faststream.nats import NatsBroker
from prometheus_client import Counter

from voicebus.campaigns import erasure, importer, phones, policy, reports
from voicebus.campaigns import events as ev
from voicebus.campaigns.clock import Clock
from voicebus.campaigns.store import Blocked, Store
from voicebus.contracts import campaigns as api
from voicebus.contracts.erasure import CAMPAIGNS_ERASE, CampaignsErased, EraseCaller
from voicebus.contracts.events import Envelope
from voicebus.contracts.retention import CAMPAIGNS_RETENTION, ApplyRetention, RetentionApplied
from voicebus.runtime.rpc import Conflict, Invalid, NotFound, responder

log = logging.getLogger(__name__)

QUEUE = "campaigns-rpc"
ROWS = Counter("voicebus_campaigns_upload_rows", "Uploaded rows, by result.", ["result"])


def _not_found(campaign_id: str) -> NotFound:
    return NotFound(f"no campaign {campaign_id!r}", code="campaign_not_found")


class Responders:
    """The handlers behind every campaigns subject.

    Args:
        store: the database.
        clock: business time.
        source: ``campaigns/<instance>``.
        default_region: region of numbers written without ``+``.
    """

    def __init__(self, store: Store, clock: Clock, source: str, default_region: str) -> None:
        self.store = store
        self.clock = clock
        self.source = source
        self.region = default_region
        self.on_staged: Callable[[], None] = lambda: None
        """Called after an upload staged DNC events (wakes the outbox relay)."""

    async def create(self, req: api.CreateCampaign) -> api.CampaignReply:
        """Store a draft."""
        campaign = await self.store.create(req.tenant_id, req.spec, self.clock.now())
        return api.CampaignReply(ok=True, campaign=campaign)

    async def get(self, req: api.CampaignRef) -> api.CampaignReply:
        """One campaign."""
        campaign = await self.store.get(req.tenant_id, req.campaign_id)
        if campaign is None:
            raise _not_found(req.campaign_id)
        return api.CampaignReply(ok=True, campaign=campaign)

    async def list(self, req: api.ListCampaigns) -> api.CampaignListReply:
        """The tenant's campaigns."""
        found = await self.store.campaigns(req.tenant_id, req.status)
        return api.CampaignListReply(ok=True, campaigns=found)

    async def move(self, verb: str, req: api.CampaignRef) -> api.CampaignReply:
        """start / pause / resume / cancel."""
        current = await self.store.get(req.tenant_id, req.campaign_id)
        if current is None:
            raise _not_found(req.campaign_id)
        allowed = policy.TRANSITIONS[verb]
        target = policy.transition(verb, current.status)
        moved = None
        if target is not None:
            moved = await self.store.set_status(
                req.tenant_id, req.campaign_id, allowed.keys(), target, self.clock.now()
            )
        if moved is None:
            message = f"cannot {verb} a campaign that is {current.status.value}"
            raise Conflict(message, code="invalid_transition")
        return api.CampaignReply(ok=True, campaign=moved)

    async def progress(self, req: api.CampaignRef) -> api.ProgressReply:
        """Live counts."""
        found = await reports.progress(self.store, req.tenant_id, req.campaign_id)
        if found is None:
            raise _not_found(req.campaign_id)
        return api.ProgressReply(ok=True, progress=found)

    async def report(self, req: api.ReportPageRequest) -> api.ReportReply:
        """One page of the per-contact report."""
        if await self.store.get(req.tenant_id, req.campaign_id) is None:
            raise _not_found(req.campaign_id)
        rows = await reports.report(
            self.store, req.tenant_id, req.campaign_id, req.after_contact_id, req.limit
        )
        after = rows[-1].contact_id if len(rows) == req.limit else None
        return api.ReportReply(ok=True, rows=rows, next_after=after)

    async def upload(self, req: api.UploadChunk) -> api.UploadReply:
        """Load one chunk of a contact file; the reply holds the upload's running totals."""
        if await self.store.get(req.tenant_id, req.campaign_id) is None:
            raise _not_found(req.campaign_id)
        try:
            parsed = importer.parse_chunk(
                req.data, req.format, req.first_line, req.header, self.region
            )
        except importer.UploadError as exc:
            raise Invalid(str(exc), code="invalid_file") from None
        env = ev.Env(req.tenant_id, req.campaign_id, self.source)

        def blocked_events(blocked: list[Blocked]) -> list[Envelope]:
            return [ev.dnc_checked(env, b.contact_id, b.phone, b.scope, stage="upload")
                    for b in blocked]  # fmt: skip

        report, blocked = await self.store.upload(
            req.tenant_id,
            req.campaign_id,
            req.upload_id,
            parsed.rows,
            parsed.errors,
            parsed.read,
            parsed.header,
            self.clock.now(),
            events_for=blocked_events,
        )
        ROWS.labels("loaded").inc(len(parsed.rows))
        ROWS.labels("rejected").inc(len(parsed.errors))
        if blocked:
            self.on_staged()
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
            raise _not_found(req.campaign_id)
        if verb == "add":
            changed = await self.store.dnc_add(
                req.tenant_id, req.campaign_id, good, req.reason, self.clock.now()
            )
        else:
            changed = await self.store.dnc_remove(req.tenant_id, req.campaign_id, good)
        return api.DncReply(ok=True, changed=changed, invalid=bad)

    async def erase(self, req: EraseCaller) -> CampaignsErased:
        """Delete a number's contacts and their attempts (its DNC entries stay)."""
        try:
            phone = phones.normalize(req.number, self.region)
        except phones.InvalidNumberError:
            phone = req.number  # not a dialable number: no contact can hold it, nothing to do
        erased = await erasure.erase_number(self.store.engine, req.tenant_id, phone)
        return CampaignsErased(
            ok=True, contacts=erased.contacts, attempts=erased.attempts, call_ids=erased.call_ids
        )

    async def expire(self, req: ApplyRetention) -> RetentionApplied:
        """Delete finished contacts older than the tenant's retention."""
        if req.contacts_before is None:
            return RetentionApplied(ok=True)
        erased = await erasure.expire(self.store.engine, req.tenant_id, req.contacts_before)
        return RetentionApplied(ok=True, contacts=erased.contacts, attempts=erased.attempts)

    async def dnc_list(self, req: api.DncListRequest) -> api.DncListReply:
        """One page of a tenant's or a campaign's list."""
        if req.campaign_id and await self.store.get(req.tenant_id, req.campaign_id) is None:
            raise _not_found(req.campaign_id)
        rows = await self.store.dnc_page(req.tenant_id, req.campaign_id, req.after, req.limit)
        entries = [api.DncEntry(phone=p, reason=r, added_at=at) for p, r, at in rows]
        more = entries[-1].phone if len(entries) == req.limit else None
        return api.DncListReply(ok=True, entries=entries, next_after=more)


def register(broker: NatsBroker, r: Responders) -> None:
    """Declare every campaigns responder on ``broker`` (one queue group: any instance answers)."""
    responder(broker, api.CAMPAIGNS_CREATE, api.CreateCampaign, api.CampaignReply, r.create,
              queue=QUEUE)  # fmt: skip
    responder(broker, api.CAMPAIGNS_GET, api.CampaignRef, api.CampaignReply, r.get, queue=QUEUE)
    responder(broker, api.CAMPAIGNS_LIST, api.ListCampaigns, api.CampaignListReply, r.list,
              queue=QUEUE)  # fmt: skip
    for verb, subject in (
        ("start", api.CAMPAIGNS_START),
        ("pause", api.CAMPAIGNS_PAUSE),
        ("resume", api.CAMPAIGNS_RESUME),
        ("cancel", api.CAMPAIGNS_CANCEL),
    ):

        async def move(req: api.CampaignRef, verb: str = verb) -> api.CampaignReply:
            return await r.move(verb, req)

        responder(broker, subject, api.CampaignRef, api.CampaignReply, move, queue=QUEUE)
    responder(broker, api.CAMPAIGNS_PROGRESS, api.CampaignRef, api.ProgressReply, r.progress,
              queue=QUEUE)  # fmt: skip
    responder(broker, api.CAMPAIGNS_REPORT, api.ReportPageRequest, api.ReportReply, r.report,
              queue=QUEUE)  # fmt: skip
    responder(broker, api.CONTACTS_UPLOAD, api.UploadChunk, api.UploadReply, r.upload,
              queue=QUEUE)  # fmt: skip

    async def dnc_add(req: api.DncChange) -> api.DncReply:
        return await r.dnc("add", req)

    async def dnc_remove(req: api.DncChange) -> api.DncReply:
        return await r.dnc("remove", req)

    responder(broker, api.DNC_ADD, api.DncChange, api.DncReply, dnc_add, queue=QUEUE)
    responder(broker, api.DNC_REMOVE, api.DncChange, api.DncReply, dnc_remove, queue=QUEUE)
    responder(broker, CAMPAIGNS_ERASE, EraseCaller, CampaignsErased, r.erase, queue=QUEUE)
    responder(broker, CAMPAIGNS_RETENTION, ApplyRetention, RetentionApplied, r.expire,
              queue=QUEUE)  # fmt: skip
    responder(broker, api.DNC_LIST, api.DncListRequest, api.DncListReply, r.dnc_list, queue=QUEUE)
