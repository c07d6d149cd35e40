"""Each tenant's retention policy: how many days each kind of its data is kept.

:meth:`RetentionPolicy.request` turns a policy into the owners' absolute cut-offs (pure);
the functions below keep policies in ``edge.tenant_retention``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.contracts.retention import ApplyRetention
from voicebus.edge.tenancy.tables import TENANT_RETENTION


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days each kind of data is kept (None: for ever)."""

    events_days: int | None = None
    transcripts_days: int | None = None
    recordings_days: int | None = None
    contacts_days: int | None = None

    @property
    def empty(self) -> bool:
        """Nothing expires."""
        return self == RetentionPolicy()

    def request(self, tenant_id: str, now: datetime) -> ApplyRetention:
        """The cut-offs of this policy at ``now``.

        Transcripts never outlive the events that hold them: with only ``events_days``
        set, transcripts go with the events.
        """

        def before(days: int | None) -> datetime | None:
            return None if days is None else now - timedelta(days=days)

        return ApplyRetention(
            tenant_id=tenant_id,
            events_before=before(self.events_days),
            transcripts_before=before(self.transcripts_days),
            recordings_before=before(self.recordings_days),
            contacts_before=before(self.contacts_days),
        )


def _policy(row: object) -> RetentionPolicy:
    return RetentionPolicy(
        getattr(row, "events_days", None),
        getattr(row, "transcripts_days", None),
        getattr(row, "recordings_days", None),
        getattr(row, "contacts_days", None),
    )


async def get_policy(engine: AsyncEngine, tenant_id: str) -> RetentionPolicy:
    """The tenant's policy (none set: keep everything)."""
    query = select(TENANT_RETENTION).where(TENANT_RETENTION.c.tenant_id == tenant_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return RetentionPolicy() if row is None else _policy(row)


async def put_policy(engine: AsyncEngine, tenant_id: str, policy: RetentionPolicy) -> None:
    """Replace the tenant's policy (the tenant must exist)."""
    values = {
        "events_days": policy.events_days,
        "transcripts_days": policy.transcripts_days,
        "recordings_days": policy.recordings_days,
        "contacts_days": policy.contacts_days,
        "updated_at": datetime.now(UTC),
    }
    stmt = pg_insert(TENANT_RETENTION).values(tenant_id=tenant_id, **values)
    stmt = stmt.on_conflict_do_update(index_elements=[TENANT_RETENTION.c.tenant_id], set_=values)
    async with engine.begin() as conn:
        await conn.execute(stmt)


async def policies(engine: AsyncEngine) -> list[tuple[str, RetentionPolicy]]:
    """Every tenant's policy that lets something expire, by tenant id."""
    query = select(TENANT_RETENTION).order_by(TENANT_RETENTION.c.tenant_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    found = [(row.tenant_id, _policy(row)) for row in rows]
    return [(tenant, policy) for tenant, policy in found if not policy.empty]
