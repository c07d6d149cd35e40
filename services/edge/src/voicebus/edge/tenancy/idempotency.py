"""``Idempotency-Key`` records: one per tenant, route and key, for 24 hours (schema ``edge``).

A request with a key first *claims* it (an insert; the primary key lets exactly one
of several concurrent duplicates win), runs, then *completes* it with the response.
A duplicate finds the claim: the same body gets the stored response, another body is
refused, and one still running is told so. A request that failed releases its claim,
so the client may retry with the same key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.edge.tenancy.tables import IDEMPOTENCY_KEYS

KEEP: Final = timedelta(hours=24)


def body_hash(route: str, body: bytes) -> str:
    """sha256 of what the request asked for (the route and its canonical body)."""
    return hashlib.sha256(route.encode() + b"\x00" + body).hexdigest()


@dataclass(frozen=True, slots=True)
class Claimed:
    """This request holds the key: run it, then complete or release."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The key was used for the same body: answer what was answered then."""

    status: int
    response: bytes


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was used for a different body."""


@dataclass(frozen=True, slots=True)
class InFlight:
    """The key's first request is still running."""


Outcome = Claimed | Replay | Mismatch | InFlight


class IdempotencyStore:
    """Claims, completes and releases keys; every query names its tenant.

    Args:
        engine: an engine on the ``edge`` schema.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(
        self, tenant_id: str, route: str, key: str, digest: str, now: datetime | None = None
    ) -> Outcome:
        """Claim ``key`` for a request whose body hashes to ``digest``."""
        now = now or datetime.now(UTC)
        where = (
            IDEMPOTENCY_KEYS.c.tenant_id == tenant_id,
            IDEMPOTENCY_KEYS.c.route == route,
            IDEMPOTENCY_KEYS.c.key == key,
        )
        async with self._engine.begin() as conn:
            # An expired record is forgotten first, in the same transaction.
            await conn.execute(
                delete(IDEMPOTENCY_KEYS).where(*where, IDEMPOTENCY_KEYS.c.created_at < now - KEEP)
            )
            inserted = await conn.execute(
                pg_insert(IDEMPOTENCY_KEYS)
                .values(tenant_id=tenant_id, route=route, key=key, body_hash=digest, created_at=now)
                .on_conflict_do_nothing()
                .returning(IDEMPOTENCY_KEYS.c.key)
            )
            if inserted.first() is not None:
                return Claimed()
            row = (await conn.execute(select(IDEMPOTENCY_KEYS).where(*where))).first()
        if row is None:  # released between our insert and select: the client may retry
            return InFlight()
        if row.body_hash != digest:
            return Mismatch()
        if row.status is None:
            return InFlight()
        return Replay(status=row.status, response=bytes(row.response))

    async def complete(
        self, tenant_id: str, route: str, key: str, status: int, response: bytes
    ) -> None:
        """Store the response of the request holding ``key``."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(IDEMPOTENCY_KEYS)
                .where(
                    IDEMPOTENCY_KEYS.c.tenant_id == tenant_id,
                    IDEMPOTENCY_KEYS.c.route == route,
                    IDEMPOTENCY_KEYS.c.key == key,
                )
                .values(status=status, response=response)
            )

    async def release(self, tenant_id: str, route: str, key: str) -> None:
        """Forget an uncompleted claim (the request failed; nothing was done)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(IDEMPOTENCY_KEYS).where(
                    IDEMPOTENCY_KEYS.c.tenant_id == tenant_id,
                    IDEMPOTENCY_KEYS.c.route == route,
                    IDEMPOTENCY_KEYS.c.key == key,
                    IDEMPOTENCY_KEYS.c.status.is_(None),
                )
            )
