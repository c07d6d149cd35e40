"""The webhook outbox on a real PostgreSQL: a call's deliveries one at a time and in order,
claims that never overlap, idempotent enqueueing, secrets encrypted at rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.edge.tenancy.credentials import CredentialCipher, fernet_keys
from voicebus.edge.tenancy.store import TenantStore
from voicebus.edge.webhooks.store import Attempt, Outgoing, Status, WebhookStore
from voicebus.edge.webhooks.tables import WEBHOOKS
from voicebus.runtime import db as dbkit

pytestmark = pytest.mark.integration

SECRET = "whsec_stored-encrypted-5f1c"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = dbkit.create_engine(database_url, "edge")
    await dbkit.ensure_schema(engine, "edge")
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def store(engine: AsyncEngine) -> WebhookStore:
    key = Fernet.generate_key().decode()
    tenants = TenantStore.from_settings(key)
    await tenants.bind(engine)
    await tenants.create_tenant("acme", "Acme")
    webhooks = WebhookStore(CredentialCipher(fernet_keys(key)))
    webhooks.bind(engine)
    return webhooks


def outgoing(hook_id: str, call_id: str, seq: int) -> Outgoing:
    return Outgoing(hook_id, "acme", call_id, f"e{seq}", "call.started.v1", seq, b"{}")


async def enqueue(store: WebhookStore, items: list[Outgoing]) -> int:
    async with store.engine.begin() as conn:
        return await WebhookStore.enqueue(conn, items, budget=3)


async def test_a_calls_deliveries_go_one_at_a_time_in_order(store: WebhookStore) -> None:
    hook = await store.create("acme", "https://x.example", ["*"], "", SECRET)
    items = [outgoing(hook.webhook_id, "c1", 1), outgoing(hook.webhook_id, "c1", 2),
             outgoing(hook.webhook_id, "c2", 3)]  # fmt: skip
    assert await enqueue(store, items) == 3
    assert await enqueue(store, items) == 0  # the same events again: kept once

    first = await store.claim_due(10, lease_s=30)
    assert sorted(d.seq for d, _ in first) == [1, 3]  # c1's second waits for its first
    assert await store.claim_due(10, lease_s=30) == []  # leased
    one = next(d for d, _ in first if d.seq == 1)
    failed = Attempt(1, datetime.now(UTC), 503, "http 503", 1.0)
    await store.settle(one, failed, status=Status.PENDING, retry_in_s=0)
    again = await store.claim_due(10, lease_s=30)
    assert [d.seq for d, _ in again] == [1]  # retried before the call's next event
    done = Attempt(2, datetime.now(UTC), 204, None, 1.0)
    await store.settle(again[0][0], done, status=Status.DELIVERED, retry_in_s=None)
    after = await store.claim_due(10, lease_s=30)
    assert [d.seq for d, _ in after] == [2]

    delivery, attempts = await store.delivery("acme", hook.webhook_id, one.delivery_id)
    assert delivery.status is Status.DELIVERED
    assert [a.status_code for a in attempts] == [503, 204]


async def test_concurrent_claims_never_take_the_same_delivery(store: WebhookStore) -> None:
    hook = await store.create("acme", "https://x.example", ["*"], "", SECRET)
    await enqueue(store, [outgoing(hook.webhook_id, f"call{n}", n) for n in range(1, 41)])
    claims = await asyncio.gather(*(store.claim_due(8, lease_s=30) for _ in range(6)))
    taken = [d.delivery_id for claim in claims for d, _ in claim]
    assert len(taken) == len(set(taken)) == 40


async def test_the_secret_is_encrypted_at_rest_and_never_listed(store: WebhookStore) -> None:
    hook = await store.create("acme", "https://x.example", ["call.*"], "crm", SECRET)
    async with store.engine.connect() as conn:
        raw = (await conn.execute(select(WEBHOOKS.c.secret_ciphertext))).scalar_one()
    assert SECRET.encode() not in raw
    target = await store.target(hook.webhook_id)
    assert target is not None
    assert target.secret == SECRET
    assert SECRET not in repr(await store.listed("acme"))


async def test_finished_deliveries_are_purged_pending_ones_kept(store: WebhookStore) -> None:
    hook = await store.create("acme", "https://x.example", ["*"], "", SECRET)
    await enqueue(store, [outgoing(hook.webhook_id, "c1", 1), outgoing(hook.webhook_id, "c2", 2)])
    claimed = await store.claim_due(10, lease_s=30)
    first = next(d for d, _ in claimed if d.seq == 1)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    await store.settle(first, Attempt(1, long_ago, 204, None, 1.0), status=Status.DELIVERED,
                       retry_in_s=None)  # fmt: skip
    assert await store.purge(datetime.now(UTC) - timedelta(days=30)) == 1
    left = await store.deliveries("acme", hook.webhook_id, status=None, call_id=None, limit=10,
                                  before=None)  # fmt: skip
    assert [d.seq for d in left] == [2]
