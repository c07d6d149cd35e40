"""Abuse guards of the edge on real NATS and PostgreSQL: operator-only account fields,
disabled tenants, call caps and the destination allow-list, body-size limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from edge_kit import FakeOrchestrator, RunningEdge, serve_edge
from pydantic import SecretStr
from test_api_integration import ADMIN, CREDENTIALS_KEY, bearer, tenant_with_key

from voicebus.contracts.streams import CALL_SLOTS, slot_key
from voicebus.contracts.telephony import ACCOUNTS_GET, AccountReply, GetAccount
from voicebus.runtime.rpc import RemoteError, RpcClient

pytestmark = pytest.mark.integration

STAND_IN = "http://127.0.0.1:9/2010-04-01"


@pytest_asyncio.fixture
async def edge(embedded_nats_factory: Any, database_url: str) -> AsyncIterator[RunningEdge]:
    async with serve_edge(
        embedded_nats_factory().url,
        database_url=SecretStr(database_url),
        admin_token=SecretStr(ADMIN),
        credentials_key=SecretStr(CREDENTIALS_KEY),
        rpc_timeout_s=1.5,
        provider_api_hosts=["api.twilio.com", "127.0.0.1"],
    ) as running:
        yield running


@pytest_asyncio.fixture
async def api(edge: RunningEdge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{edge.base_url}/api/v1", timeout=30) as client:
        yield client


def _account(api_base_url: str | None = None) -> dict[str, Any]:
    fields = {"account_id": "AC1"}
    if api_base_url is not None:
        fields["api_base_url"] = api_base_url
    return {"secrets": {"auth_token": "t0ken-0123456789"}, "fields": fields}


async def test_only_the_operator_sets_api_base_url_and_only_to_allowed_hosts(
    api: httpx.AsyncClient,
) -> None:
    key = await tenant_with_key(api, "acme", ["admin"])
    path = "/tenants/acme/accounts/twilio"
    tenant = await api.put(path, headers=bearer(key["token"]), json=_account(STAND_IN))
    assert tenant.status_code == 403, tenant.text
    assert tenant.json()["error"]["fields"][0]["field"] == "fields.api_base_url"
    # Without it the tenant stores its own account.
    plain = await api.put(path, headers=bearer(key["token"]), json=_account())
    assert plain.status_code == 200, plain.text

    for bad in ("http://169.254.169.254/latest", "https://evil.example/x", "ftp://127.0.0.1/",
                "https://user:pw@api.twilio.com"):  # fmt: skip
        refused = await api.put(path, headers=bearer(ADMIN), json=_account(bad))
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["error"]["fields"][0]["field"] == "fields.api_base_url"
    allowed = await api.put(path, headers=bearer(ADMIN), json=_account(STAND_IN))
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["fields"]["api_base_url"] == STAND_IN


async def test_a_disabled_tenants_keys_are_refused_until_enabled(api: httpx.AsyncClient) -> None:
    key = await tenant_with_key(api, "acme", ["admin"])
    other = await tenant_with_key(api, "globex", ["admin"])
    assert (await api.get("/tenants/acme", headers=bearer(key["token"]))).status_code == 200
    # Only the operator disables, not the tenant's own admin key.
    own = await api.patch("/tenants/acme", headers=bearer(key["token"]), json={"disabled": True})
    assert own.status_code == 403
    disabled = await api.patch("/tenants/acme", headers=bearer(ADMIN), json={"disabled": True})
    assert disabled.status_code == 200
    assert disabled.json()["disabled"] is True
    refused = await api.get("/tenants/acme", headers=bearer(key["token"]))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "tenant_disabled"
    assert (await api.get("/tenants/globex", headers=bearer(other["token"]))).status_code == 200
    await api.patch("/tenants/acme", headers=bearer(ADMIN), json={"disabled": False})
    assert (await api.get("/tenants/acme", headers=bearer(key["token"]))).status_code == 200


async def test_destination_countries_and_calls_per_minute_guard_post_calls(
    edge: RunningEdge, api: httpx.AsyncClient
) -> None:
    await FakeOrchestrator(["demo"]).start(edge.nc)
    key = await tenant_with_key(api, "acme", ["admin", "calls:write"])
    us, gb = "+14155550199", "+442071838750"
    calls = "/calls"
    # No limits set: anywhere.
    anywhere = await api.post(
        calls, headers=bearer(key["token"]), json={"agent_id": "demo", "to_number": gb}
    )
    assert anywhere.status_code == 202
    # The tenant cannot raise its own limits.
    body = {"calls_per_minute": 2, "allowed_countries": ["US", "CA"]}
    own = await api.put("/tenants/acme/limits", headers=bearer(key["token"]), json=body)
    assert own.status_code == 403
    bad = await api.put(
        "/tenants/acme/limits", headers=bearer(ADMIN), json={"allowed_countries": ["usa"]}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"].startswith("allowed_countries")
    assert (
        await api.put("/tenants/acme/limits", headers=bearer(ADMIN), json=body)
    ).status_code == 200
    shown = await api.get("/tenants/acme/limits", headers=bearer(key["token"]))
    assert shown.json() == {
        "calls_per_minute": 2, "allowed_countries": ["CA", "US"], "max_concurrent_calls": None
    }  # fmt: skip

    abroad = await api.post(
        calls, headers=bearer(key["token"]), json={"agent_id": "demo", "to_number": gb}
    )
    assert abroad.status_code == 403
    assert abroad.json()["error"]["fields"][0]["field"] == "to_number"
    assert "GB" in abroad.json()["error"]["message"]
    codes = [
        (await api.post(calls, headers=bearer(key["token"]),
                        json={"agent_id": "demo", "to_number": us})).status_code
        for _ in range(3)
    ]  # fmt: skip
    assert codes == [202, 202, 429]
    limited = await api.post(
        calls, headers=bearer(key["token"]), json={"agent_id": "demo", "to_number": us}
    )
    assert limited.json()["error"]["fields"][0]["field"] == "calls_per_minute"
    assert int(limited.headers["retry-after"]) >= 1


async def test_post_calls_answers_429_while_every_slot_of_the_tenant_is_taken(
    edge: RunningEdge, api: httpx.AsyncClient
) -> None:
    await FakeOrchestrator(["demo"]).start(edge.nc)
    key = await tenant_with_key(api, "acme", ["admin", "calls:write"])
    limits = {"max_concurrent_calls": 1}
    assert (await api.put("/tenants/acme/limits", headers=bearer(ADMIN), json=limits)).is_success
    kv = await edge.nc.jetstream().key_value(CALL_SLOTS.bucket)
    await kv.create(slot_key("acme", 0), b"gw-1")  # a gateway holds acme's one slot
    call = {"agent_id": "demo", "to_number": "+14155550199"}
    full = await api.post("/calls", headers=bearer(key["token"]), json=call)
    assert full.status_code == 429, full.text
    assert full.json()["error"]["code"] == "concurrent_call_limit"
    assert full.json()["error"]["fields"][0]["field"] == "max_concurrent_calls"
    await kv.delete(slot_key("acme", 0))  # the call ended
    assert (await api.post("/calls", headers=bearer(key["token"]), json=call)).status_code == 202


async def test_bodies_over_the_cap_are_413_and_failed_keys_are_limited_per_address(
    embedded_nats_factory: Any, database_url: str
) -> None:
    async with (
        serve_edge(
            embedded_nats_factory().url,
            database_url=SecretStr(database_url),
            admin_token=SecretStr(ADMIN),
            credentials_key=SecretStr(CREDENTIALS_KEY),
            max_body_bytes=2048,
            unauthenticated_per_ip_per_minute=5,
        ) as running,
        httpx.AsyncClient(base_url=f"{running.base_url}/api/v1", timeout=30) as api,
    ):
        key = await tenant_with_key(api, "acme", ["admin"])
        big = {"tenant_id": "big", "name": "x" * 4096}
        declared = await api.post("/tenants", headers=bearer(ADMIN), json=big)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "body_too_large"

        async def chunked() -> Any:  # no Content-Length: read up to the cap, then refused
            for _ in range(8):
                yield b" " * 512

        streamed = await api.post(
            "/tenants",
            headers={**bearer(ADMIN), "Content-Type": "application/json"},
            content=chunked(),
        )
        assert streamed.status_code == 413
        assert (await api.get("/tenants", headers=bearer(ADMIN))).status_code == 200

        assert (await api.get("/tenants/acme", headers=bearer(key["token"]))).status_code == 200
        wrong = "vb_0123456789ab_" + "x" * 43
        codes = [
            (await api.get("/tenants/acme", headers=bearer(wrong))).status_code for _ in range(7)
        ]
        assert codes == [401] * 5 + [429] * 2
        # A key this process already verified still works from that address.
        assert (await api.get("/tenants/acme", headers=bearer(key["token"]))).status_code == 200


async def test_two_edge_instances_enforce_one_rate_limit(
    embedded_nats_factory: Any, database_url: str
) -> None:
    url = embedded_nats_factory().url
    common: dict[str, Any] = {
        "database_url": SecretStr(database_url),
        "admin_token": SecretStr(ADMIN),
        "credentials_key": SecretStr(CREDENTIALS_KEY),
    }
    async with (
        serve_edge(url, **common) as one,
        serve_edge(url, **common) as two,
        httpx.AsyncClient(base_url=f"{one.base_url}/api/v1", timeout=30) as first,
        httpx.AsyncClient(base_url=f"{two.base_url}/api/v1", timeout=30) as second,
    ):
        key = await tenant_with_key(first, "acme", ["admin"], rate=3)
        codes = [
            (await api.get("/tenants/acme", headers=bearer(key["token"]))).status_code
            for api in (first, second, first, second, first)
        ]
        # Each instance alone saw at most 3: the count is shared.
        assert codes == [200, 200, 200, 429, 429]


async def test_the_account_lookup_hands_out_the_limits_and_refuses_a_disabled_tenant(
    edge: RunningEdge, api: httpx.AsyncClient
) -> None:
    await tenant_with_key(api, "acme", ["admin"])
    stored = await api.put("/tenants/acme/accounts/twilio", headers=bearer(ADMIN), json=_account())
    assert stored.status_code == 200
    client = RpcClient(edge.nc, timeout_s=5)
    request = GetAccount(tenant_id="acme", provider="twilio")
    account = (await client.ask(ACCOUNTS_GET, request, AccountReply)).account
    assert account is not None
    assert account.allowed_countries is None
    assert account.max_concurrent_calls is None
    no_calls = {"max_concurrent_calls": 0}
    bad = await api.put("/tenants/acme/limits", headers=bearer(ADMIN), json=no_calls)
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "max_concurrent_calls"
    limits = {"allowed_countries": ["US"], "max_concurrent_calls": 3}
    assert (await api.put("/tenants/acme/limits", headers=bearer(ADMIN), json=limits)).is_success
    shown = await api.get("/tenants/acme/limits", headers=bearer(ADMIN))
    assert shown.json()["max_concurrent_calls"] == 3
    # The gateway gets the allow-list and the cap with the account: it guards every call.
    account = (await client.ask(ACCOUNTS_GET, request, AccountReply)).account
    assert account is not None
    assert account.allowed_countries == ["US"]
    assert account.max_concurrent_calls == 3
    await api.patch("/tenants/acme", headers=bearer(ADMIN), json={"disabled": True})
    with pytest.raises(RemoteError) as refused:
        await client.ask(ACCOUNTS_GET, request, AccountReply)
    assert (refused.value.status, refused.value.code) == (403, "tenant_disabled")
