"""The browser page and browser sessions on a real edge: it asks the gateway (a stand-in that
speaks ``vb.rpc.gateway.sessions.create``) and the orchestrator over real NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from edge_kit import FakeGateway, FakeOrchestrator, RunningEdge, serve_edge
from pydantic import SecretStr

from voicebus.contracts.rpc import RpcError

pytestmark = pytest.mark.integration

ADMIN = "operator-token-browser-3f8a"
AGENT = "demo"


@pytest_asyncio.fixture
async def edge(embedded_nats_factory: Any, database_url: str) -> AsyncIterator[RunningEdge]:
    async with serve_edge(
        embedded_nats_factory().url,
        database_url=SecretStr(database_url),
        admin_token=SecretStr(ADMIN),
        credentials_key=SecretStr(Fernet.generate_key().decode()),
        browser_page_tenant="lobby",
        rpc_timeout_s=0.5,
    ) as running:
        yield running


@pytest_asyncio.fixture
async def http(edge: RunningEdge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=30) as client:
        yield client


async def test_the_page_and_its_assets_are_served(http: httpx.AsyncClient) -> None:
    page = await http.get("/browser")
    assert page.status_code == 200
    assert "/browser/static/app.js" in page.text
    for name in ("app.js", "capture-worklet.js", "playback-worklet.js", "style.css"):
        assert (await http.get(f"/browser/static/{name}")).status_code == 200, name
    assert (await http.get("/browser/static/..%2Froutes.py")).status_code == 404
    assert (await http.get("/browser/static/routes.py")).status_code == 404


async def test_the_page_lists_the_orchestrators_agents_of_its_tenant(
    edge: RunningEdge, http: httpx.AsyncClient
) -> None:
    assert (await http.get("/browser/agents")).status_code == 503  # nobody answers yet
    orchestrator = await FakeOrchestrator(["demo", "sales"]).start(edge.nc)
    reply = await http.get("/browser/agents")
    assert reply.status_code == 200
    assert reply.json() == [{"agent_id": "demo", "name": "Demo"},
                            {"agent_id": "sales", "name": "Sales"}]  # fmt: skip
    assert [r.tenant_id for r in orchestrator.listed] == ["lobby"]


async def test_the_page_session_is_the_gateways(edge: RunningEdge, http: httpx.AsyncClient) -> None:
    no_gateway = await http.post("/browser/session", json={"agent_id": AGENT})
    assert no_gateway.status_code == 503
    gateway = await FakeGateway([AGENT]).start(edge.nc)
    body = {"agent_id": AGENT, "context": {"customer_name": "Ada"}}
    session = await http.post("/browser/session", json=body)
    assert session.status_code == 200, session.text
    assert session.json() == {
        "call_id": "call-1",
        "ws_url": "ws://gateway.test/ws/browser",
        "parameters": {"call_id": "call-1", "vb_token": "signed"},
        "expires_in_s": 300,
    }
    [asked] = gateway.asked
    assert (asked.tenant_id, asked.agent_id, asked.context) == ("lobby", AGENT, body["context"])

    assert (await http.post("/browser/session", json={"agent_id": "nobody"})).status_code == 404
    invalid = await http.post("/browser/session", json={"agent_id": "not an id"})
    assert invalid.status_code == 422
    assert len(gateway.asked) == 2  # the invalid id never reached the gateway
    gateway.refusal = RpcError(status=409, code="browser_calls_disabled", message="off")
    assert (await http.post("/browser/session", json={"agent_id": AGENT})).status_code == 409
    gateway.refusal = RpcError(status=500, code="internal", message="bug")
    assert (await http.post("/browser/session", json={"agent_id": AGENT})).status_code == 503


async def _key(http: httpx.AsyncClient, tenant: str, scopes: list[str]) -> dict[str, str]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    created = await http.post(
        "/api/v1/tenants", headers=admin, json={"tenant_id": tenant, "name": tenant}
    )
    assert created.status_code in (201, 409), created.text
    key = await http.post(
        f"/api/v1/tenants/{tenant}/keys", headers=admin, json={"name": "page", "scopes": scopes}
    )
    assert key.status_code == 201, key.text
    return {"Authorization": f"Bearer {key.json()['token']}"}


async def test_a_pages_backend_asks_for_a_session_with_its_api_key(
    edge: RunningEdge, http: httpx.AsyncClient
) -> None:
    writer = await _key(http, "acme", ["calls:write"])
    reader = await _key(http, "acme", ["calls:read"])
    body = {"agent_id": AGENT, "context": {"order": "1234"}}
    assert (await http.post("/api/v1/browser-sessions", json=body)).status_code == 401
    assert (
        await http.post("/api/v1/browser-sessions", json=body, headers=reader)
    ).status_code == 403
    no_gateway = await http.post("/api/v1/browser-sessions", json=body, headers=writer)
    assert no_gateway.status_code == 503
    assert no_gateway.json()["error"]["code"] == "owner_unavailable"

    gateway = await FakeGateway([AGENT]).start(edge.nc)
    created = await http.post("/api/v1/browser-sessions", json=body, headers=writer)
    assert created.status_code == 201, created.text
    assert created.json()["ws_url"] == "ws://gateway.test/ws/browser"
    assert created.json()["parameters"]["vb_token"] == "signed"
    [asked] = gateway.asked
    assert (asked.tenant_id, asked.agent_id, asked.context) == ("acme", AGENT, {"order": "1234"})

    unknown = await http.post(
        "/api/v1/browser-sessions", json={"agent_id": "nobody"}, headers=writer
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"][0]["field"] == "agent_id"
    bad_context = await http.post(
        "/api/v1/browser-sessions",
        json={"agent_id": AGENT, "context": {"not a name": "x"}},
        headers=writer,
    )
    assert bad_context.status_code == 422
    gateway.refusal = RpcError(status=409, code="browser_calls_disabled", message="off")
    disabled = await http.post("/api/v1/browser-sessions", json=body, headers=writer)
    assert disabled.status_code == 409
    assert disabled.json()["error"]["code"] == "browser_calls_disabled"

    schema = (await http.get("/api/v1/openapi.json")).json()
    operation = schema["paths"]["/api/v1/browser-sessions"]["post"]
    assert "201" in operation["responses"]
    assert "409" in operation["responses"]


async def test_an_edge_without_the_page_serves_none_of_it(
    embedded_nats_factory: Any, database_url: str
) -> None:
    async with serve_edge(
        embedded_nats_factory().url, database_url=SecretStr(database_url), browser_page=False
    ) as edge:
        await FakeGateway([AGENT]).start(edge.nc)
        async with httpx.AsyncClient(base_url=edge.base_url) as http:
            for path in ("/browser", "/browser/agents", "/browser/static/app.js"):
                assert (await http.get(path)).status_code == 404, path
            session = await http.post("/browser/session", json={"agent_id": AGENT})
            assert session.status_code == 404
