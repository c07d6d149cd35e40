"""Live counts and the per-contact report of a campaign."""

from __future__ import annotations

from sqlalchemy import func, select

from voicebus.campaigns.models import ATTEMPTS, CONTACTS, LIVE
from voicebus.campaigns.store import Store
from voicebus.contracts.campaigns import Progress, ReportRow


async def progress(store: Store, tenant_id: str, campaign_id: str) -> Progress | None:
    """Live counts by contact state and attempt outcome."""
    campaign = await store.get(tenant_id, campaign_id)
    if campaign is None:
        return None
    async with store.engine.connect() as conn:
        states = (
            await conn.execute(
                select(CONTACTS.c.state, func.count())
                .where(CONTACTS.c.tenant_id == tenant_id, CONTACTS.c.campaign_id == campaign_id)
                .group_by(CONTACTS.c.state)
            )
        ).all()
        outcomes = (
            await conn.execute(
                select(ATTEMPTS.c.outcome, ATTEMPTS.c.status, func.count())
                .where(ATTEMPTS.c.tenant_id == tenant_id, ATTEMPTS.c.campaign_id == campaign_id)
                .group_by(ATTEMPTS.c.outcome, ATTEMPTS.c.status)
            )
        ).all()
    by_outcome: dict[str, int] = {}
    in_flight = dialed = 0
    for outcome, status, count in outcomes:
        dialed += count
        if status in LIVE:
            in_flight += count
        if outcome is not None:
            by_outcome[outcome] = by_outcome.get(outcome, 0) + count
    by_state = {s: c for s, c in states}
    return Progress(
        campaign_id=campaign_id,
        status=campaign.status,
        contacts=sum(by_state.values()),
        by_state=by_state,
        by_outcome=by_outcome,
        in_flight=in_flight,
        dialed=dialed,
    )


async def report(
    store: Store, tenant_id: str, campaign_id: str, after: int, limit: int
) -> list[ReportRow]:
    """One page of the per-contact report, by contact id."""
    query = (
        select(CONTACTS)
        .where(
            CONTACTS.c.tenant_id == tenant_id,
            CONTACTS.c.campaign_id == campaign_id,
            CONTACTS.c.contact_id > after,
        )
        .order_by(CONTACTS.c.contact_id)
        .limit(limit)
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        ReportRow(
            contact_id=r.contact_id,
            phone=r.phone,
            state=r.state,
            attempts=r.attempts,
            outcome=r.outcome,
            duration_s=r.duration_s,
            recording_id=r.recording_id,
            last_call_id=r.last_call_id,
            last_attempt_at=r.last_attempt_at,
            disposition=r.disposition,
            success=r.success,
        )
        for r in rows
    ]
