"""``Idempotency-Key`` on ``POST /calls`` and ``POST /campaigns``: real NATS, real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from edge_kit import FakeOrchestrator, RunningEdge, serve_edge, wait_for
from nats.aio.msg import Msg
from pydantic import SecretStr
from test_api_integration import ADMIN, CREDENTIALS_KEY, bearer, tenant_with_key

from voicebus.contracts import campaigns as c
from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.subjects import cmd

pytestmark = pytest.mark.integration

CALL = {"agent_id": "demo", "to_number": "+14155550199"}
SPEC = {"name": "Renewals", "agent_id": "demo", "caller_ids": ["+14155550100"]}


@pytest_asyncio.fixture
async def edge(embedded_nats_factory: Any, database_url: str) -> AsyncIterator[RunningEdge]:
    async with serve_edge(
        embedded_nats_factory().url,
        database_url=SecretStr(database_url),
        admin_token=SecretStr(ADMIN),
        credentials_key=SecretStr(CREDENTIALS_KEY),
        rpc_timeout_s=1.5,
    ) as running:
        yield running


@pytest_asyncio.fixture
async def api(edge: RunningEdge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{edge.base_url}/api/v1", timeout=30) as client:
        yield client


async def _originated(edge: RunningEdge) -> list[OriginateCall]:
    seen: list[OriginateCall] = []

    async def on_command(msg: Msg) -> None:
        seen.append(OriginateCall.model_validate_json(msg.data))

    await edge.nc.subscribe(cmd("call", "originate"), cb=on_command)
    await FakeOrchestrator(["demo"]).start(edge.nc)
    return seen


async def test_a_retried_call_is_placed_once_and_answered_the_same(
    edge: RunningEdge, api: httpx.AsyncClient
) -> None:
    seen = await _originated(edge)
    key = await tenant_with_key(api, "acme", ["calls:write"])
    other = await tenant_with_key(api, "globex", ["calls:write"])
    headers = {**bearer(key["token"]), "Idempotency-Key": "order-7781"}

    first = await api.post("/calls", headers=headers, json=CALL)
    again = await api.post("/calls", headers=headers, json=CALL)
    assert first.status_code == again.status_code == 202, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"

    changed = await api.post("/calls", headers=headers, json={**CALL, "to_number": "+14155550111"})
    assert changed.status_code == 422
    assert changed.json()["error"]["fields"][0]["field"] == "Idempotency-Key"

    # The same key of another tenant is another key.
    elsewhere = await api.post(
        "/calls", headers={**bearer(other["token"]), "Idempotency-Key": "order-7781"}, json=CALL
    )
    assert elsewhere.status_code == 202
    assert elsewhere.json()["call_id"] != first.json()["call_id"]
    # Without a key every request is a new call.
    plain = [await api.post("/calls", headers=bearer(key["token"]), json=CALL) for _ in range(2)]
    assert plain[0].json()["call_id"] != plain[1].json()["call_id"]

    await wait_for(lambda: len(seen) == 4)
    await asyncio.sleep(0.2)  # a duplicate originate would arrive by now
    assert [s.call_id for s in seen].count(first.json()["call_id"]) == 1
    assert len(seen) == 4


async def test_concurrent_duplicates_place_one_call(
    edge: RunningEdge, api: httpx.AsyncClient
) -> None:
    seen = await _originated(edge)
    key = await tenant_with_key(api, "acme", ["calls:write"])
    headers = {**bearer(key["token"]), "Idempotency-Key": "burst-1"}
    answers = await asyncio.gather(*(api.post("/calls", headers=headers, json=CALL)
                                     for _ in range(8)))  # fmt: skip
    accepted = {a.json()["call_id"] for a in answers if a.status_code == 202}
    assert len(accepted) == 1, [a.text for a in answers]
    assert {a.status_code for a in answers} <= {202, 409}
    await wait_for(lambda: bool(seen))
    await asyncio.sleep(0.2)
    assert [s.call_id for s in seen] == list(accepted)


async def test_a_failed_request_releases_its_key(api: httpx.AsyncClient, edge: RunningEdge) -> None:
    await FakeOrchestrator(["demo"]).start(edge.nc)
    key = await tenant_with_key(api, "acme", ["calls:write"])
    headers = {**bearer(key["token"]), "Idempotency-Key": "k-2"}
    refused = await api.post("/calls", headers=headers, json={**CALL, "agent_id": "nobody"})
    assert refused.status_code == 422
    # Fixed and sent again with the same key: done now, not refused as "another body".
    done = await api.post("/calls", headers=headers, json=CALL)
    assert done.status_code == 202, done.text
    bad = await api.post(
        "/calls", headers={**bearer(key["token"]), "Idempotency-Key": "has space"}, json=CALL
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "Idempotency-Key"


async def test_campaign_creation_is_idempotent(edge: RunningEdge, api: httpx.AsyncClient) -> None:
    created: list[c.CreateCampaign] = []

    async def owner(msg: Msg) -> None:
        request = c.CreateCampaign.model_validate_json(msg.data)
        created.append(request)
        now = datetime.now(UTC)
        campaign = c.Campaign(
            campaign_id=f"cmp-{len(created)}", tenant_id=request.tenant_id,
            status=c.CampaignStatus.DRAFT, spec=request.spec, created_at=now, updated_at=now,
        )  # fmt: skip
        await msg.respond(c.CampaignReply(ok=True, campaign=campaign).model_dump_json().encode())

    await edge.nc.subscribe(c.CAMPAIGNS_CREATE, cb=owner)
    await edge.nc.flush()
    key = await tenant_with_key(api, "acme", ["campaigns:write"])
    headers = {**bearer(key["token"]), "Idempotency-Key": "spring-renewals"}
    first = await api.post("/campaigns", headers=headers, json=SPEC)
    again = await api.post("/campaigns", headers=headers, json=SPEC)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["campaign_id"] == first.json()["campaign_id"] == "cmp-1"
    assert len(created) == 1
    other = await api.post("/campaigns", headers=headers, json={**SPEC, "name": "Other"})
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["error"]["message"]
