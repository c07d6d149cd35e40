"""The edge's database: required, and tables an older gateway kept are adopted with their rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from edge_kit import serve_edge
from pydantic import SecretStr

from voicebus.contracts.telephony import ACCOUNTS_GET, AccountReply, GetAccount
from voicebus.edge.app import build
from voicebus.edge.migrations import MIGRATIONS
from voicebus.edge.settings import EdgeSettings
from voicebus.edge.tenancy import keys
from voicebus.edge.tenancy.store import TenantStore
from voicebus.runtime import db as dbkit
from voicebus.runtime.errors import ConfigurationError
from voicebus.runtime.migrations import runner
from voicebus.runtime.rpc import RpcClient

pytestmark = pytest.mark.integration

ADMIN = "operator-token-legacy-2c7d"
SECRET = "stored-before-the-split-91ab"


async def test_an_edge_without_a_database_refuses_to_start(embedded_nats_factory: Any) -> None:
    service, _ = build(EdgeSettings(nats_url=embedded_nats_factory().url, instance_id="no-db"))
    with pytest.raises(ConfigurationError, match="VB_DATABASE_URL"):
        await service.start()
    assert not service.ready


async def test_tenancy_tables_of_the_gateway_schema_are_adopted_with_their_rows(
    embedded_nats_factory: Any, blank_database_url: str
) -> None:
    database_url = blank_database_url
    credentials_key = Fernet.generate_key().decode()
    legacy = dbkit.create_engine(database_url, "gateway")
    key = keys.new_key()
    try:
        await dbkit.ensure_schema(legacy, "gateway")
        old = TenantStore.from_settings(credentials_key)
        # What the gateway did before the edge existed: its tenancy tables in its schema.
        async with legacy.begin() as conn:
            tables = _tenancy_tables()
            await conn.run_sync(tables[0].metadata.create_all, tables=tables)
        await old.bind(legacy)
        await old.create_tenant("acme", "Acme")
        await old.add_key("acme", key, "old key", frozenset({"admin"}), 600)
        await old.put_account("acme", "twilio", {"auth_token": SECRET}, {"account_id": "AC1"})
    finally:
        await legacy.dispose()

    outcome = await runner.upgrade(database_url, MIGRATIONS)  # `voicebus migrate`
    (head,) = runner.heads(MIGRATIONS)
    assert (outcome.before, outcome.after) == (None, head)
    async with serve_edge(
        embedded_nats_factory().url,
        database_url=SecretStr(database_url),
        admin_token=SecretStr(ADMIN),
        credentials_key=SecretStr(credentials_key),
    ) as edge:
        async with httpx.AsyncClient(base_url=f"{edge.base_url}/api/v1") as http:
            tenant = await http.get("/tenants/acme", headers={"Authorization": f"Bearer {ADMIN}"})
            assert tenant.status_code == 200, tenant.text
            by_key = await http.get(
                "/tenants/acme/keys", headers={"Authorization": f"Bearer {key.token}"}
            )
            assert by_key.status_code == 200
            assert [k["key_id"] for k in by_key.json()] == [key.key_id]
        request = GetAccount(tenant_id="acme", provider="twilio")
        reply = await RpcClient(edge.nc, timeout_s=5).ask(ACCOUNTS_GET, request, AccountReply)
        assert reply.account is not None
        assert reply.account.secrets["auth_token"].get_secret_value() == SECRET

    conn = await asyncpg.connect(database_url)
    try:
        where = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_name IN ('tenants', 'api_keys', 'provider_accounts')"
        )
    finally:
        await conn.close()
    assert {(r["table_schema"], r["table_name"]) for r in where} == {
        ("edge", "tenants"),
        ("edge", "api_keys"),
        ("edge", "provider_accounts"),
    }
    again = await runner.upgrade(database_url, MIGRATIONS)  # once only
    assert (again.before, again.after) == (head, head)


def _tenancy_tables() -> list[Any]:
    """The tables as the gateway kept them: the frozen shapes of the ``0001`` baseline, not
    the live ones (later revisions add columns the gateway never had)."""
    path = Path(MIGRATIONS.script_location) / "versions" / "v0001_baseline.py"
    spec = importlib.util.spec_from_file_location("edge_baseline_0001", path)
    assert spec is not None
    assert spec.loader is not None
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    names = ("tenants", "api_keys", "provider_accounts", "idempotency_keys", "tenant_limits")
    return [baseline.METADATA.tables[name] for name in names]
