"""Erasing a number from a tenant's campaigns (its contacts and their attempts), and
expiring finished contacts older than the tenant's retention.

Do-not-call entries are kept: they exist so that the number is not called again, which
an erasure must not undo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.campaigns.models import ATTEMPTS, CONTACTS


@dataclass(frozen=True, slots=True)
class Erased:
    """What one erasure deleted."""

    contacts: int
    attempts: int
    call_ids: list[str]


async def erase_number(engine: AsyncEngine, tenant_id: str, phone: str) -> Erased:
    """Delete ``tenant_id``'s contacts with ``phone`` and every attempt to dial them."""
    async with engine.begin() as conn:
        contact_ids = (
            await conn.scalars(
                select(CONTACTS.c.contact_id)
                .where(CONTACTS.c.tenant_id == tenant_id, CONTACTS.c.phone == phone)
                .with_for_update()
            )
        ).all()
        if not contact_ids:
            return Erased(0, 0, [])
        attempts = (
            await conn.scalars(
                delete(ATTEMPTS)
                .where(ATTEMPTS.c.tenant_id == tenant_id, ATTEMPTS.c.contact_id.in_(contact_ids))
                .returning(ATTEMPTS.c.call_id)
            )
        ).all()
        await conn.execute(
            delete(CONTACTS).where(
                CONTACTS.c.tenant_id == tenant_id, CONTACTS.c.contact_id.in_(contact_ids)
            )
        )
    return Erased(len(contact_ids), len(attempts), sorted(attempts))


_LIVE_STATES = ("pending", "dialing")
"""Contacts still to be dialed or being dialed: never expired."""


async def expire(engine: AsyncEngine, tenant_id: str, before: datetime) -> Erased:
    """Delete ``tenant_id``'s finished contacts last dialed (or due) before ``before``."""
    async with engine.begin() as conn:
        last = func.coalesce(CONTACTS.c.last_attempt_at, CONTACTS.c.next_at)
        contact_ids = (
            await conn.scalars(
                select(CONTACTS.c.contact_id)
                .where(
                    CONTACTS.c.tenant_id == tenant_id,
                    CONTACTS.c.state.not_in(_LIVE_STATES),
                    last < before,
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not contact_ids:
            return Erased(0, 0, [])
        attempts = (
            await conn.scalars(
                delete(ATTEMPTS)
                .where(ATTEMPTS.c.tenant_id == tenant_id, ATTEMPTS.c.contact_id.in_(contact_ids))
                .returning(ATTEMPTS.c.call_id)
            )
        ).all()
        await conn.execute(delete(CONTACTS).where(CONTACTS.c.contact_id.in_(contact_ids)))
    return Erased(len(contact_ids), len(attempts), sorted(attempts))
