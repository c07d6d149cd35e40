"""``voicebus keys rotate`` against the edge: real PostgreSQL, real NATS, two keys."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet, InvalidToken
from edge_kit import RunningEdge, serve_edge
from pydantic import SecretStr
from test_api_integration import ADMIN, bearer

from voicebus.contracts.keys import CREDENTIALS_ROTATE, KeysRotated
from voicebus.contracts.telephony import ACCOUNTS_GET, AccountReply, GetAccount
from voicebus.devkit.keys_cli import rotate_all
from voicebus.runtime.rpc import RpcClient

pytestmark = pytest.mark.integration

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
SECRET = "tw-auth-token-rotate-me-5d1c"


async def _ciphertext(database_url: str) -> bytes:
    conn = await asyncpg.connect(database_url)
    try:
        value: bytes = await conn.fetchval("SELECT ciphertext FROM edge.provider_accounts")
    finally:
        await conn.close()
    return value


def _opens(key: str, token: bytes) -> bool:
    try:
        Fernet(key.encode()).decrypt(token)
    except InvalidToken:
        return False
    return True


async def _store_account(edge: RunningEdge) -> None:
    async with httpx.AsyncClient(base_url=f"{edge.base_url}/api/v1") as api:
        created = await api.post(
            "/tenants", headers=bearer(ADMIN), json={"tenant_id": "acme", "name": "Acme"}
        )
        assert created.status_code == 201
        stored = await api.put(
            "/tenants/acme/accounts/twilio",
            headers=bearer(ADMIN),
            json={"secrets": {"auth_token": SECRET}, "fields": {"account_sid": "AC1"}},
        )
        assert stored.status_code == 200, stored.text


async def _secret_via_rpc(nc: Any) -> str:
    client = RpcClient(nc, timeout_s=5)
    reply = await client.ask(
        ACCOUNTS_GET, GetAccount(tenant_id="acme", provider="twilio"), AccountReply
    )
    assert reply.account is not None
    return reply.account.secrets["auth_token"].get_secret_value()


async def test_rotation_re_encrypts_with_the_newest_key_and_the_old_key_can_go(
    embedded_nats_factory: Any, database_url: str
) -> None:
    nats_url = embedded_nats_factory().url
    common = {"database_url": SecretStr(database_url), "admin_token": SecretStr(ADMIN)}
    async with serve_edge(nats_url, credentials_key=SecretStr(OLD), **common) as edge:
        await _store_account(edge)
    before = await _ciphertext(database_url)
    assert _opens(OLD, before)
    assert not _opens(NEW, before)

    async with serve_edge(nats_url, credentials_key=SecretStr(f"{NEW},{OLD}"), **common) as edge:
        assert await _secret_via_rpc(edge.nc) == SECRET  # old ciphertext readable before
        owners = {"edge": CREDENTIALS_ROTATE}
        dry = await rotate_all(edge.nc, dry_run=True, owners=owners)
        assert dry["edge"] == KeysRotated(ok=True, rotated=1, unreadable=0, keys=2)
        assert await _ciphertext(database_url) == before  # a dry run changes nothing
        done = await rotate_all(edge.nc, dry_run=False, owners=owners)
        assert done["edge"] == KeysRotated(ok=True, rotated=1, unreadable=0, keys=2)
    after = await _ciphertext(database_url)
    assert _opens(NEW, after)
    assert not _opens(OLD, after)

    # The old key removed: everything stored is still readable.
    async with serve_edge(nats_url, credentials_key=SecretStr(NEW), **common) as edge:
        assert await _secret_via_rpc(edge.nc) == SECRET


async def test_rows_no_key_opens_are_counted_and_left_alone(
    embedded_nats_factory: Any, database_url: str
) -> None:
    nats_url = embedded_nats_factory().url
    common = {"database_url": SecretStr(database_url), "admin_token": SecretStr(ADMIN)}
    async with serve_edge(nats_url, credentials_key=SecretStr(OLD), **common) as edge:
        await _store_account(edge)
    before = await _ciphertext(database_url)
    # The old key dropped too early: rotation reports it and destroys nothing.
    async with serve_edge(nats_url, credentials_key=SecretStr(NEW), **common) as edge:
        report = await rotate_all(edge.nc, dry_run=False, owners={"edge": CREDENTIALS_ROTATE})
        assert report["edge"] == KeysRotated(ok=True, rotated=0, unreadable=1, keys=1)
    assert await _ciphertext(database_url) == before
