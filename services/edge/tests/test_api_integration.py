"""The REST API on a real edge: real NATS, real PostgreSQL, HTTP over loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from edge_kit import FakeOrchestrator, RunningEdge, serve_edge, wait_for
from nats.aio.msg import Msg
from pydantic import SecretStr

from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.rpc import CALLS_GET, CallReply, CallSummary
from voicebus.contracts.subjects import cmd
from voicebus.contracts.telephony import ACCOUNTS_GET, AccountReply, GetAccount
from voicebus.runtime.rpc import RemoteError, RpcClient

pytestmark = pytest.mark.integration

ADMIN = "operator-token-integration-9c3e"
CREDENTIALS_KEY = Fernet.generate_key().decode()
SECRET = "tw-auth-token-do-not-leak-4e7a91"


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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def tenant_with_key(
    api: httpx.AsyncClient, tenant: str, scopes: list[str], rate: int | None = None
) -> dict[str, Any]:
    created = await api.post(
        "/tenants", headers=bearer(ADMIN), json={"tenant_id": tenant, "name": tenant.title()}
    )
    assert created.status_code in (201, 409), created.text
    body: dict[str, Any] = {"name": f"{tenant} key", "scopes": scopes}
    if rate is not None:
        body["rate_limit_per_minute"] = rate
    key = await api.post(f"/tenants/{tenant}/keys", headers=bearer(ADMIN), json=body)
    assert key.status_code == 201, key.text
    result: dict[str, Any] = key.json()
    return result


async def test_keys_are_shown_once_scoped_to_their_tenant_and_revocable(
    api: httpx.AsyncClient,
) -> None:
    acme = await tenant_with_key(api, "acme", ["admin"])
    globex = await tenant_with_key(api, "globex", ["admin"])
    assert acme["token"].startswith(f"vb_{acme['key_id']}_")

    listed = await api.get("/tenants/acme/keys", headers=bearer(acme["token"]))
    assert listed.status_code == 200
    assert [k["key_id"] for k in listed.json()] == [acme["key_id"]]
    assert "token" not in listed.json()[0]
    assert acme["token"] not in listed.text

    # Another tenant's admin key cannot see (or learn of) acme.
    assert (await api.get("/tenants/acme/keys", headers=bearer(globex["token"]))).status_code == 404
    assert (await api.get("/tenants", headers=bearer(acme["token"]))).status_code == 403

    revoked = await api.delete(
        f"/tenants/acme/keys/{acme['key_id']}", headers=bearer(globex["token"])
    )
    assert revoked.status_code == 404
    revoked = await api.delete(f"/tenants/acme/keys/{acme['key_id']}", headers=bearer(ADMIN))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused = await api.get("/tenants/acme/keys", headers=bearer(acme["token"]))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    wrong_secret = acme["token"][:-4] + "AAAA"
    assert (await api.get("/tenants/globex", headers=bearer(wrong_secret))).status_code == 401


async def test_rate_limit_per_key_answers_429(api: httpx.AsyncClient) -> None:
    slow = await tenant_with_key(api, "acme", ["admin"], rate=3)
    fast = await tenant_with_key(api, "acme", ["admin"])
    codes = [
        (await api.get("/tenants/acme", headers=bearer(slow["token"]))).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    limited = await api.get("/tenants/acme", headers=bearer(slow["token"]))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert (await api.get("/tenants/acme", headers=bearer(fast["token"]))).status_code == 200


async def test_provider_credentials_are_encrypted_and_never_returned_or_logged(
    edge: RunningEdge,
    api: httpx.AsyncClient,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = await tenant_with_key(api, "acme", ["admin"])
    put = await api.put(
        "/tenants/acme/accounts/twilio",
        headers=bearer(key["token"]),
        json={"secrets": {"auth_token": SECRET}, "fields": {"account_sid": "AC123"}},
    )
    assert put.status_code == 200, put.text
    got = await api.get("/tenants/acme/accounts/twilio", headers=bearer(key["token"]))
    assert got.status_code == 200
    assert got.json()["secrets_set"] == ["auth_token"]
    assert got.json()["fields"] == {"account_sid": "AC123"}
    assert SECRET not in put.text
    assert SECRET not in got.text

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT p::text AS row, ciphertext FROM edge.provider_accounts p")
    finally:
        await conn.close()
    assert len(rows) == 1
    assert SECRET not in rows[0]["row"]
    assert SECRET.encode() not in rows[0]["ciphertext"]
    assert SECRET not in caplog.text

    # What the gateway gets over the bus (vb.rpc.edge.accounts.get) is the decrypted credential.
    rpc = RpcClient(edge.nc, timeout_s=5)
    request = GetAccount(tenant_id="acme", provider="twilio")
    reply = await rpc.ask(ACCOUNTS_GET, request, AccountReply)
    assert reply.account is not None
    assert reply.account.secrets["auth_token"].get_secret_value() == SECRET
    assert reply.account.fields == {"account_sid": "AC123"}
    assert SECRET not in repr(reply)
    assert SECRET not in caplog.text
    with pytest.raises(RemoteError) as other_tenant:
        await rpc.ask(ACCOUNTS_GET, GetAccount(tenant_id="globex", provider="twilio"), AccountReply)
    assert (other_tenant.value.status, other_tenant.value.code) == (404, "account_not_found")
    with pytest.raises(RemoteError) as unknown_provider:
        await rpc.ask(ACCOUNTS_GET, GetAccount(tenant_id="acme", provider="nosuch"), AccountReply)
    assert unknown_provider.value.status == 422

    unknown = await api.put(
        "/tenants/acme/accounts/nosuch", headers=bearer(key["token"]), json={"secrets": {}}
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"][0]["field"] == "provider"
    gone = await api.delete("/tenants/acme/accounts/twilio", headers=bearer(key["token"]))
    assert gone.status_code == 204
    with pytest.raises(RemoteError) as deleted:
        await rpc.ask(ACCOUNTS_GET, request, AccountReply)
    assert deleted.value.status == 404
    assert (
        await api.get("/tenants/acme/accounts/twilio", headers=bearer(key["token"]))
    ).status_code == 404


async def test_a_missing_owner_answers_503_within_two_seconds(api: httpx.AsyncClient) -> None:
    key = await tenant_with_key(api, "acme", ["calls:read", "agents:read"])
    for path in ("/calls", "/calls/c-1", "/calls/c-1/events", "/agents", "/campaigns"):
        started = time.monotonic()
        response = await api.get(path, headers=bearer(key["token"]))
        elapsed = time.monotonic() - started
        if path == "/campaigns":
            assert response.status_code == 403  # no campaigns:read scope
            continue
        assert response.status_code == 503, (path, response.text)
        assert response.json()["error"]["code"] == "owner_unavailable"
        assert elapsed < 2.5, (path, elapsed)


async def test_post_call_publishes_originate_and_the_request_id_reaches_the_owner(
    edge: RunningEdge, api: httpx.AsyncClient
) -> None:
    await FakeOrchestrator(["demo"]).start(edge.nc)
    seen: list[OriginateCall] = []

    async def on_command(msg: Msg) -> None:
        seen.append(OriginateCall.model_validate_json(msg.data))

    await edge.nc.subscribe(cmd("call", "originate"), cb=on_command)
    await edge.nc.flush()
    headers_seen: list[dict[str, str]] = []

    async def owner(msg: Msg) -> None:
        headers_seen.append(dict(msg.headers or {}))
        await msg.respond(
            CallReply(ok=True, call=CallSummary(call_id="c9", status="ended"))
            .model_dump_json()
            .encode()
        )

    await edge.nc.subscribe(CALLS_GET, cb=owner)
    await edge.nc.flush()
    key = await tenant_with_key(api, "acme", ["calls:write", "calls:read"])
    got = await api.get("/calls/c9", headers={**bearer(key["token"]), "X-Request-Id": "req-9"})
    assert got.status_code == 200
    assert headers_seen[0]["X-Request-Id"] == "req-9"
    response = await api.post(
        "/calls",
        headers=bearer(key["token"]),
        json={"agent_id": "demo", "to_number": "+14155550199", "detect_machine": True},
    )
    assert response.status_code == 202, response.text
    call_id = response.json()["call_id"]
    await wait_for(lambda: bool(seen))
    assert seen[0].call_id == call_id
    assert seen[0].tenant_id == "acme"
    assert seen[0].data.detect_machine is True

    bad = await api.post(
        "/calls", headers=bearer(key["token"]), json={"agent_id": "demo", "to_number": "12"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "to_number"
    unknown_agent = await api.post(
        "/calls", headers=bearer(key["token"]), json={"agent_id": "x", "to_number": "+14155550199"}
    )
    assert unknown_agent.status_code == 422
    assert unknown_agent.json()["error"]["fields"][0]["field"] == "agent_id"


async def test_guessing_a_keys_secret_is_cut_off(api: httpx.AsyncClient) -> None:
    key = await tenant_with_key(api, "acme", ["admin"])
    # Used once: a verified token is remembered and never checked against the guess limit.
    assert (await api.get("/tenants/acme", headers=bearer(key["token"]))).status_code == 200
    prefix = key["token"][: len("vb_") + 12 + 1]
    codes = [
        (await api.get("/tenants/acme", headers=bearer(prefix + f"{n:043d}"))).status_code
        for n in range(12)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429, 429]
    # The key itself still works: only guesses are cut off.
    assert (await api.get("/tenants/acme", headers=bearer(key["token"]))).status_code == 200
