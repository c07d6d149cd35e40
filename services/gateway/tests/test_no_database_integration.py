"""The gateway keeps no database: given ``VB_DATABASE_URL`` or not, it never connects,
its readiness does not depend on PostgreSQL, and it carries a call all the same."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from gateway_kit import (
    EventLog,
    FakeOrchestrator,
    TwilioPeer,
    post_webhook,
    random_ulaw,
    serve_gateway,
    twiml_stream,
)
from pydantic import SecretStr

from voicebus.contracts.events import CallEnded, EndReason

pytestmark = pytest.mark.integration


async def _gateway_connections(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'gateway/%'"
        )
    finally:
        await conn.close()
    return [row["application_name"] for row in rows]


@pytest.mark.parametrize("with_url", [False, True], ids=["no-url", "url-given"])
async def test_a_gateway_without_a_database_is_ready_and_completes_a_call(
    embedded_nats_factory: Any, database_url: str, with_url: bool
) -> None:
    overrides: dict[str, Any] = {"database_url": SecretStr(database_url)} if with_url else {}
    async with serve_gateway(embedded_nats_factory().url, **overrides) as gw:
        assert gw.service.db is None
        readiness = await gw.service.check_readiness()
        assert "database" not in readiness
        assert all(readiness.values()), readiness

        await FakeOrchestrator(["demo"]).start(gw.nc)
        events = await EventLog().start(gw.nc)
        response = await post_webhook(gw, "demo")
        assert response.status_code == 200
        url, params = twiml_stream(response.text)
        peer = await TwilioPeer.open(url)
        await peer.connected()
        await peer.start(params)
        await events.one("call.started.v1", params["call_id"])
        for chunk in range(1, 26):
            await peer.media(random_ulaw(), chunk, chunk * 20)
        await peer.stop()
        ended = await events.one("call.ended.v1", params["call_id"])
        await peer.close()
        assert isinstance(ended, CallEnded)
        assert ended.data.reason is EndReason.CALLER_HANGUP
        await asyncio.sleep(0)  # let a (wrongly) pooled connection show up, if there were one
        assert await _gateway_connections(database_url) == []
