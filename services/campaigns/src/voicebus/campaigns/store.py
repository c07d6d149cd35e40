"""Campaigns, contacts, DNC lists and uploads in PostgreSQL. Every query is tenant-scoped."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicebus.campaigns import outbox
from voicebus.campaigns.importer import ContactRow
from voicebus.campaigns.models import ATTEMPTS, CAMPAIGNS, CONTACTS, DNC, UPLOADS
from voicebus.contracts.campaigns import (
    Campaign,
    CampaignSpec,
    CampaignStatus,
    RowError,
    UploadReport,
)
from voicebus.contracts.events import Envelope
from voicebus.contracts.ids import new_id

MAX_ERRORS = 1000
_SLICE = 1000
DUE_NOW = datetime(2000, 1, 1, tzinfo=UTC)
"""``next_at`` of a fresh contact: due at once."""


@dataclass(frozen=True, slots=True)
class Blocked:
    """A contact loaded as do-not-call (for its ``dnc.checked`` event)."""

    contact_id: int
    phone: str
    scope: str


def _campaign(row: Any) -> Campaign:
    return Campaign(
        campaign_id=row.campaign_id,
        tenant_id=row.tenant_id,
        status=CampaignStatus(row.status),
        spec=CampaignSpec.model_validate(row.spec),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class Store:
    """Database access for the campaigns service.

    Args:
        engine: bound later with :meth:`bind` when the service has connected.
    """

    def __init__(self, engine: AsyncEngine | None = None) -> None:
        self._engine = engine

    def bind(self, engine: AsyncEngine) -> None:
        """Use ``engine`` from now on."""
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """The bound engine."""
        if self._engine is None:
            raise RuntimeError("campaigns store used before an engine was bound")
        return self._engine

    # -- campaigns ----------------------------------------------------------

    async def create(self, tenant_id: str, spec: CampaignSpec, now: datetime) -> Campaign:
        """Store a new draft campaign."""
        row = {
            "tenant_id": tenant_id,
            "campaign_id": new_id(),
            "status": CampaignStatus.DRAFT.value,
            "spec": spec.model_dump(mode="json"),
            "created_at": now,
            "updated_at": now,
        }
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(CAMPAIGNS).values(row).returning(*CAMPAIGNS.c))
            return _campaign(result.one())

    async def get(self, tenant_id: str, campaign_id: str) -> Campaign | None:
        """One campaign of the tenant, or None."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(CAMPAIGNS).where(
                        CAMPAIGNS.c.tenant_id == tenant_id, CAMPAIGNS.c.campaign_id == campaign_id
                    )
                )
            ).first()
        return _campaign(row) if row is not None else None

    async def campaigns(
        self, tenant_id: str, status: CampaignStatus | None = None
    ) -> list[Campaign]:
        """The tenant's campaigns, newest first."""
        query = select(CAMPAIGNS).where(CAMPAIGNS.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(CAMPAIGNS.c.status == status.value)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(CAMPAIGNS.c.created_at.desc()))).all()
        return [_campaign(r) for r in rows]

    async def set_status(
        self,
        tenant_id: str,
        campaign_id: str,
        allowed_from: Iterable[CampaignStatus],
        to: CampaignStatus,
        now: datetime,
    ) -> Campaign | None:
        """Move a campaign to ``to`` if it is in one of ``allowed_from`` (atomic)."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(CAMPAIGNS)
                    .where(
                        CAMPAIGNS.c.tenant_id == tenant_id,
                        CAMPAIGNS.c.campaign_id == campaign_id,
                        CAMPAIGNS.c.status.in_([s.value for s in allowed_from]),
                    )
                    .values(status=to.value, updated_at=now)
                    .returning(*CAMPAIGNS.c)
                )
            ).first()
        return _campaign(row) if row is not None else None

    # -- contacts -----------------------------------------------------------

    async def upload(
        self,
        tenant_id: str,
        campaign_id: str,
        upload_id: str,
        rows: Sequence[ContactRow],
        errors: Sequence[RowError],
        read: int,
        header: str | None,
        now: datetime,
        events_for: Callable[[list[Blocked]], Sequence[Envelope]] | None = None,
    ) -> tuple[UploadReport, list[Blocked]]:
        """Load a chunk's good rows (duplicates merged, DNC scrubbed) and add to the totals.

        ``events_for`` builds the events of the contacts blocked by a DNC list; they are
        staged in the outbox in the same transaction.
        """
        unique: dict[str, ContactRow] = {}
        merged = 0
        for row in rows:
            seen = unique.get(row.number.e164)
            if seen is not None:
                merged += 1
                unique[row.number.e164] = ContactRow(
                    seen.line, seen.number, {**seen.context, **row.context}
                )
            else:
                unique[row.number.e164] = row
        loaded = 0
        blocked: list[Blocked] = []
        rows_left = list(unique.values())
        async with self.engine.begin() as conn:
            # Slices keep each statement under PostgreSQL's 32,767 parameters.
            for start in range(0, len(rows_left), _SLICE):
                part = rows_left[start : start + _SLICE]
                new, old, flagged = await self._insert(conn, tenant_id, campaign_id, part)
                loaded, merged = loaded + new, merged + old
                blocked.extend(flagged)
            report = await self._add_totals(
                conn,
                tenant_id,
                campaign_id,
                upload_id,
                header=header,
                rows=read,
                loaded=loaded,
                merged=merged,
                dnc=len(blocked),
                errors=errors,
                now=now,
            )
            if events_for is not None:
                await outbox.stage(conn, events_for(blocked))
        return report, blocked

    async def _insert(
        self, conn: AsyncConnection, tenant_id: str, campaign_id: str, rows: Sequence[ContactRow]
    ) -> tuple[int, int, list[Blocked]]:
        """Insert or merge ``rows``; returns (new, merged, new ones on a DNC list)."""
        phones = [r.number.e164 for r in rows]
        blocked_scope = await self._dnc_scopes(conn, tenant_id, campaign_id, phones)
        values = [
            {
                "tenant_id": tenant_id,
                "campaign_id": campaign_id,
                "phone": r.number.e164,
                "region": r.number.region,
                "zones": list(r.number.zones),
                "context": r.context,
                "line": r.line,
                "state": "dnc" if r.number.e164 in blocked_scope else "pending",
                "next_at": DUE_NOW,
            }
            for r in rows
        ]
        base = insert(CONTACTS).values(values)
        stmt = base.on_conflict_do_update(
            constraint="contacts_one_per_number",
            set_={
                "context": CONTACTS.c.context.op("||")(base.excluded.context),
                "state": literal_column(
                    "CASE WHEN excluded.state = 'dnc' AND contacts.state = 'pending' "
                    "THEN 'dnc' ELSE contacts.state END"
                ),
            },
        ).returning(
            CONTACTS.c.contact_id,
            CONTACTS.c.phone,
            literal_column("(xmax = 0)").label("new"),
        )
        loaded = merged = 0
        blocked: list[Blocked] = []
        for contact_id, phone, new in (await conn.execute(stmt)).all():
            if new:
                loaded += 1
            else:
                merged += 1
            if new and phone in blocked_scope:
                blocked.append(Blocked(contact_id, phone, blocked_scope[phone]))
        return loaded, merged, blocked

    async def _add_totals(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        campaign_id: str,
        upload_id: str,
        *,
        header: str | None,
        rows: int,
        loaded: int,
        merged: int,
        dnc: int,
        errors: Sequence[RowError],
        now: datetime,
    ) -> UploadReport:
        new_errors = [e.model_dump() for e in errors[:MAX_ERRORS]]
        base = insert(UPLOADS).values(
            upload_id=upload_id,
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            header=header,
            rows=rows,
            loaded=loaded,
            merged=merged,
            dnc=dnc,
            rejected=len(errors),
            errors=new_errors,
            updated_at=now,
        )
        ex = base.excluded
        stmt = base.on_conflict_do_update(
            index_elements=[UPLOADS.c.upload_id],
            where=and_(UPLOADS.c.tenant_id == tenant_id, UPLOADS.c.campaign_id == campaign_id),
            set_={
                "header": func.coalesce(UPLOADS.c.header, ex.header),
                "rows": UPLOADS.c.rows + ex.rows,
                "loaded": UPLOADS.c.loaded + ex.loaded,
                "merged": UPLOADS.c.merged + ex.merged,
                "dnc": UPLOADS.c.dnc + ex.dnc,
                "rejected": UPLOADS.c.rejected + ex.rejected,
                "errors": literal_column(
                    f"CASE WHEN jsonb_array_length(uploads.errors) < {MAX_ERRORS} "
                    "THEN uploads.errors || excluded.errors ELSE uploads.errors END"
                ),
                "updated_at": ex.updated_at,
            },
        ).returning(*UPLOADS.c)
        row = (await conn.execute(stmt)).one()
        return UploadReport(
            upload_id=row.upload_id,
            rows=row.rows,
            loaded=row.loaded,
            merged=row.merged,
            dnc=row.dnc,
            rejected=row.rejected,
            errors=[RowError.model_validate(e) for e in row.errors[:MAX_ERRORS]],
            header=row.header,
        )

    async def _dnc_scopes(
        self, conn: AsyncConnection, tenant_id: str, campaign_id: str, phones: Sequence[str]
    ) -> dict[str, str]:
        rows = await conn.execute(
            select(DNC.c.phone, DNC.c.scope).where(
                DNC.c.tenant_id == tenant_id,
                DNC.c.scope.in_(["", campaign_id]),
                DNC.c.phone.in_(list(phones)),
            )
        )
        return {p: ("tenant" if s == "" else "campaign") for p, s in rows.all()}

    async def dnc_scopes(
        self, conn: AsyncConnection, tenant_id: str, campaign_id: str, phones: Sequence[str]
    ) -> dict[str, str]:
        """Which of ``phones`` are on the tenant's or the campaign's list (phone → scope)."""
        return await self._dnc_scopes(conn, tenant_id, campaign_id, phones)

    # -- DNC ----------------------------------------------------------------

    async def dnc_add(
        self,
        tenant_id: str,
        campaign_id: str | None,
        phones: Sequence[str],
        reason: str | None,
        now: datetime,
    ) -> int:
        """Add numbers to a list; pending contacts with them become ``dnc`` at once."""
        if not phones:
            return 0
        scope = campaign_id or ""
        values = [
            {
                "tenant_id": tenant_id,
                "scope": scope,
                "phone": p,
                "reason": reason,
                "created_at": now,
            }
            for p in dict.fromkeys(phones)
        ]
        async with self.engine.begin() as conn:
            added = await conn.execute(
                insert(DNC).values(values).on_conflict_do_nothing().returning(DNC.c.phone)
            )
            count = len(added.all())
            where = [
                CONTACTS.c.tenant_id == tenant_id,
                CONTACTS.c.state == "pending",
                CONTACTS.c.phone.in_(list(dict.fromkeys(phones))),
            ]
            if campaign_id:
                where.append(CONTACTS.c.campaign_id == campaign_id)
            await conn.execute(update(CONTACTS).where(*where).values(state="dnc"))
        return count

    async def dnc_remove(
        self, tenant_id: str, campaign_id: str | None, phones: Sequence[str]
    ) -> int:
        """Remove numbers from a list (contacts already marked stay ``dnc``)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                DNC.delete()
                .where(
                    DNC.c.tenant_id == tenant_id,
                    DNC.c.scope == (campaign_id or ""),
                    DNC.c.phone.in_(list(phones)),
                )
                .returning(DNC.c.phone)
            )
            return len(result.all())

    async def callee_of(self, tenant_id: str, call_id: str) -> str | None:
        """The number a campaign call dialed, or None when the call is not a campaign's."""
        query = (
            select(CONTACTS.c.phone)
            .select_from(ATTEMPTS.join(CONTACTS, CONTACTS.c.contact_id == ATTEMPTS.c.contact_id))
            .where(ATTEMPTS.c.tenant_id == tenant_id, ATTEMPTS.c.call_id == call_id)
        )
        async with self.engine.connect() as conn:
            return await conn.scalar(query)

    async def dnc_page(
        self, tenant_id: str, campaign_id: str | None, after: str | None, limit: int
    ) -> list[tuple[str, str | None, datetime]]:
        """One page of a list in number order: (phone, reason, added at)."""
        query = select(DNC.c.phone, DNC.c.reason, DNC.c.created_at).where(
            DNC.c.tenant_id == tenant_id, DNC.c.scope == (campaign_id or "")
        )
        if after is not None:
            query = query.where(DNC.c.phone > after)
        async with self.engine.connect() as conn:
            rows = await conn.execute(query.order_by(DNC.c.phone).limit(limit))
            return [(r.phone, r.reason, r.created_at) for r in rows]
