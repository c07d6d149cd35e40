"""Webhook subscriptions and their deliveries in PostgreSQL. Every query names its tenant,
except the dispatcher's, which work on deliveries whose tenant was fixed at ingest.

Ordering per call: a delivery is sent only when no earlier delivery (lower stream
sequence) of the same subscription and call is still pending, so a call's events reach
the receiver in the order they were published; deliveries of different calls (and
different subscriptions) go out in parallel. A delivery being sent is leased for a
while, so two edge instances never send it at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicebus.contracts.ids import new_id
from voicebus.edge.tenancy.credentials import CredentialCipher
from voicebus.edge.tenancy.errors import NotFoundError, TenancyError
from voicebus.edge.webhooks.tables import ATTEMPTS, DELIVERIES, WEBHOOKS

_SECRET: Final = "secret"  # noqa: S105 - the name of the field in the ciphertext


class Status(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    """The last attempt failed (or the event cannot be sent): a dead letter."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """A subscription, without its secret."""

    webhook_id: str
    tenant_id: str
    url: str
    event_types: tuple[str, ...]
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Target:
    """What the dispatcher needs of a subscription: where, and the key to sign with."""

    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one subscription: the outbox row and its log."""

    delivery_id: str
    webhook_id: str
    tenant_id: str
    call_id: str
    event_id: str
    event_type: str
    seq: int
    status: Status
    attempts: int
    budget: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a delivery."""

    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event to put in the outbox for one subscription."""

    webhook_id: str
    tenant_id: str
    call_id: str
    event_id: str
    event_type: str
    seq: int
    body: bytes


def new_webhook_id() -> str:
    """``wh_`` and 16 hex digits."""
    return "wh_" + secrets.token_hex(8)


class WebhookStore:
    """Subscriptions (secrets encrypted with the edge's credential cipher) and deliveries.

    Args:
        cipher: encrypts signing secrets at rest.
    """

    def __init__(self, cipher: CredentialCipher) -> None:
        self._cipher = cipher
        self._engine: AsyncEngine | None = None

    def bind(self, engine: AsyncEngine) -> None:
        """Use ``engine`` (its tables are created with the tenancy store's)."""
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """The bound engine."""
        if self._engine is None:
            raise TenancyError("the edge has no database (VB_DATABASE_URL)")
        return self._engine

    # -- subscriptions -----------------------------------------------------------

    async def create(
        self, tenant_id: str, url: str, event_types: list[str], description: str, secret: str
    ) -> Webhook:
        """Store a new subscription of ``tenant_id``."""
        now = datetime.now(UTC)
        hook = Webhook(
            new_webhook_id(), tenant_id, url, tuple(event_types), description, True, now, now
        )
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(WEBHOOKS).values(
                    webhook_id=hook.webhook_id,
                    tenant_id=tenant_id,
                    url=url,
                    event_types=list(event_types),
                    description=description,
                    enabled=True,
                    secret_ciphertext=self._cipher.encrypt({_SECRET: secret}, {}),
                    created_at=now,
                    updated_at=now,
                )
            )
        return hook

    async def get(self, tenant_id: str, webhook_id: str) -> Webhook:
        """One subscription of ``tenant_id``. Raises ``NotFoundError``."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(WEBHOOKS).where(
                        WEBHOOKS.c.tenant_id == tenant_id, WEBHOOKS.c.webhook_id == webhook_id
                    )
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no webhook {webhook_id!r}")
        return _webhook(row)

    async def listed(self, tenant_id: str) -> list[Webhook]:
        """The tenant's subscriptions, oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(WEBHOOKS)
                .where(WEBHOOKS.c.tenant_id == tenant_id)
                .order_by(WEBHOOKS.c.created_at, WEBHOOKS.c.webhook_id)
            )
        return [_webhook(r) for r in rows]

    async def update(
        self, tenant_id: str, webhook_id: str, changes: dict[str, Any], secret: str | None
    ) -> Webhook:
        """Change fields (``url``, ``event_types``, ``description``, ``enabled``) and,
        when given, the secret. Raises ``NotFoundError``."""
        values = dict(changes)
        if secret is not None:
            values["secret_ciphertext"] = self._cipher.encrypt({_SECRET: secret}, {})
        values["updated_at"] = datetime.now(UTC)
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(WEBHOOKS)
                .where(WEBHOOKS.c.tenant_id == tenant_id, WEBHOOKS.c.webhook_id == webhook_id)
                .values(**values)
            )
        if done.rowcount == 0:
            raise NotFoundError(f"no webhook {webhook_id!r}")
        return await self.get(tenant_id, webhook_id)

    async def delete(self, tenant_id: str, webhook_id: str) -> None:
        """Delete a subscription and its delivery log. Raises ``NotFoundError``."""
        async with self.engine.begin() as conn:
            done = await conn.execute(
                delete(WEBHOOKS).where(
                    WEBHOOKS.c.tenant_id == tenant_id, WEBHOOKS.c.webhook_id == webhook_id
                )
            )
        if done.rowcount == 0:
            raise NotFoundError(f"no webhook {webhook_id!r}")

    async def enabled(self) -> list[Webhook]:
        """Every enabled subscription (the ingester's routing table)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(WEBHOOKS).where(WEBHOOKS.c.enabled.is_(True)))
        return [_webhook(r) for r in rows]

    async def target(self, webhook_id: str) -> Target | None:
        """URL and decrypted secret of a subscription, or None when it was deleted."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(WEBHOOKS.c.url, WEBHOOKS.c.secret_ciphertext).where(
                        WEBHOOKS.c.webhook_id == webhook_id
                    )
                )
            ).first()
        if row is None:
            return None
        secrets_, _fields = self._cipher.decrypt(row.secret_ciphertext)
        return Target(row.url, secrets_[_SECRET])

    # -- the outbox ----------------------------------------------------------------

    @staticmethod
    async def enqueue(conn: AsyncConnection, items: list[Outgoing], budget: int) -> int:
        """Put ``items`` in the outbox within the caller's transaction; an event already
        there for the same subscription is skipped. Returns how many were new."""
        if not items:
            return 0
        now = datetime.now(UTC)
        rows = [
            {
                "delivery_id": new_id(),
                "webhook_id": i.webhook_id,
                "tenant_id": i.tenant_id,
                "call_id": i.call_id,
                "event_id": i.event_id,
                "event_type": i.event_type,
                "seq": i.seq,
                "body": i.body,
                "status": Status.PENDING.value,
                "attempts": 0,
                "budget": budget,
                "next_attempt_at": now,
                "created_at": now,
            }
            for i in items
        ]
        stmt = pg_insert(DELIVERIES).values(rows).on_conflict_do_nothing()
        done = await conn.execute(stmt.returning(DELIVERIES.c.delivery_id))
        return len(done.all())

    async def claim_due(self, limit: int, lease_s: float) -> list[tuple[Delivery, bytes]]:
        """Lease up to ``limit`` deliveries that are due and first in their call's line."""
        async with self.engine.begin() as conn:
            rows = await conn.execute(_CLAIM, {"limit": limit, "lease_s": lease_s})
            ids = [r.delivery_id for r in rows]
            if not ids:
                return []
            found = await conn.execute(select(DELIVERIES).where(DELIVERIES.c.delivery_id.in_(ids)))
            return [(_delivery(r), bytes(r.body)) for r in found]

    async def settle(
        self,
        delivery: Delivery,
        attempt: Attempt,
        *,
        status: Status,
        retry_in_s: float | None,
    ) -> None:
        """Log ``attempt`` and move the delivery on: delivered, dead, or due again later."""
        now = attempt.at
        values: dict[str, Any] = {
            "status": status.value,
            "attempts": attempt.attempt,
            "last_status_code": attempt.status_code,
            "last_error": attempt.error,
            "lease_until": None,
        }
        if status is Status.PENDING:
            values["next_attempt_at"] = now + timedelta(seconds=retry_in_s or 0)
        else:
            values["finished_at"] = now
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(ATTEMPTS).values(
                    delivery_id=delivery.delivery_id,
                    attempt=attempt.attempt,
                    at=attempt.at,
                    status_code=attempt.status_code,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                )
            )
            await conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.delivery_id == delivery.delivery_id)
                .values(**values)
            )

    # -- the delivery log ------------------------------------------------------------

    async def deliveries(
        self,
        tenant_id: str,
        webhook_id: str,
        *,
        status: Status | None,
        call_id: str | None,
        limit: int,
        before: str | None,
    ) -> list[Delivery]:
        """The subscription's deliveries, newest first (``before``: a delivery id)."""
        await self.get(tenant_id, webhook_id)
        where = [DELIVERIES.c.tenant_id == tenant_id, DELIVERIES.c.webhook_id == webhook_id]
        if status is not None:
            where.append(DELIVERIES.c.status == status.value)
        if call_id is not None:
            where.append(DELIVERIES.c.call_id == call_id)
        if before is not None:
            where.append(DELIVERIES.c.delivery_id < before)
        query = (
            select(*[c for c in DELIVERIES.c if c.name != "body"])
            .where(and_(*where))
            .order_by(DELIVERIES.c.delivery_id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = await conn.execute(query)
        return [_delivery(r) for r in rows]

    async def delivery(
        self, tenant_id: str, webhook_id: str, delivery_id: str
    ) -> tuple[Delivery, list[Attempt]]:
        """One delivery and its attempts. Raises ``NotFoundError``."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*[c for c in DELIVERIES.c if c.name != "body"]).where(
                        DELIVERIES.c.tenant_id == tenant_id,
                        DELIVERIES.c.webhook_id == webhook_id,
                        DELIVERIES.c.delivery_id == delivery_id,
                    )
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no delivery {delivery_id!r}")
            attempts = await conn.execute(
                select(ATTEMPTS)
                .where(ATTEMPTS.c.delivery_id == delivery_id)
                .order_by(ATTEMPTS.c.attempt)
            )
        return _delivery(row), [
            Attempt(a.attempt, a.at, a.status_code, a.error, a.duration_ms) for a in attempts
        ]

    async def erase_calls(self, tenant_id: str, call_ids: Sequence[str]) -> int:
        """Delete the tenant's deliveries of these calls, pending or done, with their
        attempts (a caller's erasure): their bodies hold the calls' events. Returns how
        many went."""
        if not call_ids:
            return 0
        async with self.engine.begin() as conn:
            done = await conn.execute(
                delete(DELIVERIES).where(
                    DELIVERIES.c.tenant_id == tenant_id,
                    DELIVERIES.c.call_id.in_(list(call_ids)),
                )
            )
        return int(done.rowcount or 0)

    async def purge(self, finished_before: datetime) -> int:
        """Forget deliveries (their bodies and attempts) that finished before the cutoff;
        pending ones are kept whatever their age. Returns how many went."""
        async with self.engine.begin() as conn:
            done = await conn.execute(
                delete(DELIVERIES).where(
                    DELIVERIES.c.status != Status.PENDING.value,
                    DELIVERIES.c.finished_at < finished_before,
                )
            )
        return int(done.rowcount or 0)

    async def redeliver(
        self, tenant_id: str, webhook_id: str, delivery_id: str, budget: int
    ) -> Delivery:
        """Send a delivery again now (whatever its state), with ``budget`` more attempts.

        Raises:
            NotFoundError: no such delivery of this tenant's subscription.
        """
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.tenant_id == tenant_id,
                    DELIVERIES.c.webhook_id == webhook_id,
                    DELIVERIES.c.delivery_id == delivery_id,
                )
                .values(
                    status=Status.PENDING.value,
                    budget=DELIVERIES.c.attempts + budget,
                    next_attempt_at=func.now(),
                    finished_at=None,
                )
            )
        if done.rowcount == 0:
            raise NotFoundError(f"no delivery {delivery_id!r}")
        delivery, _ = await self.delivery(tenant_id, webhook_id, delivery_id)
        return delivery


# Heads of their line only: no earlier pending delivery of the same subscription and call.
# SKIP LOCKED: instances claiming at once take different rows; the lease keeps a row from
# being claimed again while it is being sent.
_CLAIM: Final = text(
    """
    UPDATE webhook_deliveries AS d
    SET lease_until = now() + make_interval(secs => :lease_s)
    WHERE d.delivery_id IN (
        SELECT h.delivery_id FROM webhook_deliveries AS h
        WHERE h.status = 'pending'
          AND h.next_attempt_at <= now()
          AND (h.lease_until IS NULL OR h.lease_until < now())
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries AS e
              WHERE e.webhook_id = h.webhook_id AND e.call_id = h.call_id
                AND e.status = 'pending' AND e.seq < h.seq)
        ORDER BY h.next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    RETURNING d.delivery_id
    """
)


def _webhook(row: Any) -> Webhook:
    return Webhook(
        webhook_id=row.webhook_id,
        tenant_id=row.tenant_id,
        url=row.url,
        event_types=tuple(row.event_types),
        description=row.description,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        delivery_id=row.delivery_id,
        webhook_id=row.webhook_id,
        tenant_id=row.tenant_id,
        call_id=row.call_id,
        event_id=row.event_id,
        event_type=row.event_type,
        seq=row.seq,
        status=Status(row.status),
        attempts=row.attempts,
        budget=row.budget,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )
