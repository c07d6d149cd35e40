"""Component tests of the REST edge: FastAPI TestClient, a fake bus, a fixed principal."""

from __future__ import annotations

import time
from typing import Any

import pytest
from edge_fakes import OPERATOR, READ_ONLY_KEY, TENANT_KEY, FakeBus, edge_client
from fastapi.testclient import TestClient

from voicebus.contracts.agents.api import AGENTS_CHECK_CONTEXT, ContextCheckReply
from voicebus.contracts.events import CallAnalyzedData, SuccessEvaluation
from voicebus.contracts.rpc import (
    CALLS_GET,
    MEMORY_DELETE,
    MEMORY_GET,
    AgentReply,
    CallerMemoryReply,
    CallerProfile,
    CallerRef,
    CallReply,
    CallSummary,
    RpcError,
)

pytestmark = pytest.mark.component


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def client(bus: FakeBus) -> TestClient:
    return edge_client(bus)


def auth(token: str = TENANT_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_token_is_401_with_a_challenge_and_a_request_id(client: TestClient) -> None:
    response = client.get("/api/v1/calls")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["error"]["code"] == "unauthorized"
    assert body["request_id"] == response.headers["x-request-id"]


def test_a_well_formed_request_id_is_echoed_a_bad_one_replaced(client: TestClient) -> None:
    given = client.get("/api/v1/calls", headers={"X-Request-Id": "req-42"})
    assert given.headers["x-request-id"] == "req-42"
    bad = client.get("/api/v1/calls", headers={"X-Request-Id": "no spaces allowed"})
    assert bad.headers["x-request-id"] != "no spaces allowed"


def test_the_request_id_travels_to_the_owner(client: TestClient, bus: FakeBus) -> None:
    response = client.get("/api/v1/calls/c1", headers={**auth(), "X-Request-Id": "req-77"})
    assert response.headers["x-request-id"] == "req-77"
    assert set(bus.request_ids) == {"req-77"}


def test_invalid_body_is_422_naming_the_field(client: TestClient, bus: FakeBus) -> None:
    response = client.post(
        "/api/v1/calls", headers=auth(), json={"agent_id": "demo", "to_number": "555-0199"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert [f["field"] for f in error["fields"]] == ["to_number"]
    assert error["message"].startswith("to_number:")
    unknown = client.post(
        "/api/v1/calls",
        headers=auth(),
        json={"agent_id": "demo", "to_number": "+14155550199", "colour": "red"},
    )
    assert unknown.status_code == 422
    assert [f["field"] for f in unknown.json()["error"]["fields"]] == ["colour"]
    not_json = client.post(
        "/api/v1/calls",
        headers={**auth(), "Content-Type": "application/json"},
        content=b'{"agent_id": ',
    )
    assert not_json.status_code == 422
    assert [f["field"] for f in not_json.json()["error"]["fields"]] == ["body"]
    assert bus.originated == []


def test_post_call_queues_originate_and_returns_the_call_id(
    client: TestClient, bus: FakeBus
) -> None:
    bus.replies[AGENTS_CHECK_CONTEXT] = (
        AgentReply(ok=False, error=RpcError(status=404, code="agent_not_found", message="no"))
        .model_dump_json()
        .encode()
    )
    unknown = client.post(
        "/api/v1/calls", headers=auth(), json={"agent_id": "nobody", "to_number": "+14155550199"}
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"][0]["field"] == "agent_id"

    # The agent's context variables: the orchestrator's 422 names the variable.
    missing = "context.customer_id: required variable is missing"
    bus.replies[AGENTS_CHECK_CONTEXT] = (
        ContextCheckReply(ok=False, error=RpcError(status=422, code="invalid_context",
                                                   message=missing))
        .model_dump_json()
        .encode()
    )  # fmt: skip
    refused = client.post(
        "/api/v1/calls", headers=auth(), json={"agent_id": "demo", "to_number": "+14155550199"}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"] == [
        {"field": "context.customer_id", "message": "required variable is missing"}
    ]
    assert bus.originated == []

    bus.replies[AGENTS_CHECK_CONTEXT] = b'{"ok": true, "agent_id": "demo", "version": 3}'

    response = client.post(
        "/api/v1/calls",
        headers=auth(),
        json={"agent_id": "demo", "to_number": "+14155550199", "context": {"name": "Ada"}},
    )
    assert response.status_code == 202, response.text
    call_id = response.json()["call_id"]
    [command] = bus.originated
    assert command.call_id == call_id
    assert command.tenant_id == "acme"
    assert command.data.to_number == "+14155550199"
    assert command.data.context == {"name": "Ada"}


def test_a_missing_owner_is_503_quickly(client: TestClient, bus: FakeBus) -> None:
    started = time.monotonic()
    response = client.get("/api/v1/calls/abc", headers=auth())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "owner_unavailable"
    assert response.headers["retry-after"] == "1"
    bus.silent.add(CALLS_GET)
    timed_out = client.get("/api/v1/calls/abc", headers=auth())
    assert timed_out.status_code == 503
    assert timed_out.json()["error"]["code"] == "owner_timeout"
    assert time.monotonic() - started < 5


def test_owner_errors_and_replies_pass_through(client: TestClient, bus: FakeBus) -> None:
    bus.replies[CALLS_GET] = (
        CallReply(
            ok=False, error=RpcError(status=404, code="call_not_found", message="no call 'x'")
        )
        .model_dump_json()
        .encode()
    )
    assert client.get("/api/v1/calls/x", headers=auth()).status_code == 404
    call = CallSummary(call_id="c1", status="ended", agent_id="demo")
    bus.replies[CALLS_GET] = CallReply(ok=True, call=call).model_dump_json().encode()
    response = client.get("/api/v1/calls/c1", headers=auth())
    assert response.status_code == 200
    assert response.json()["call_id"] == "c1"
    bus.replies[CALLS_GET] = b"not json"
    assert client.get("/api/v1/calls/c1", headers=auth()).status_code == 502


def test_scopes_are_enforced(client: TestClient, bus: FakeBus) -> None:
    body: dict[str, Any] = {"agent_id": "demo", "to_number": "+14155550199"}
    response = client.post("/api/v1/calls", headers=auth(READ_ONLY_KEY), json=body)
    assert response.status_code == 403
    assert "calls:write" in response.json()["error"]["message"]
    operator = client.get("/api/v1/calls", headers=auth(OPERATOR))
    assert operator.status_code == 403
    assert operator.json()["error"]["code"] == "tenant_key_required"
    tenant_on_operator_route = client.get("/api/v1/tenants", headers=auth())
    assert tenant_on_operator_route.status_code == 403


def test_the_rate_limit_answers_429_with_retry_after(client: TestClient) -> None:
    codes = [client.get("/api/v1/calls/x", headers=auth()).status_code for _ in range(6)]
    assert codes[:5] == [503] * 5  # no owner, but counted
    assert codes[5] == 429
    limited = client.get("/api/v1/calls/x", headers=auth())
    assert int(limited.headers["retry-after"]) >= 1


def test_without_a_database_keys_are_503_not_500(client: TestClient) -> None:
    response = client.get("/api/v1/calls", headers=auth("vb_0123456789ff_" + "z" * 43))
    assert response.status_code == 503
    response = client.get("/api/v1/tenants", headers=auth(OPERATOR))
    assert response.status_code == 503


def test_openapi_and_the_offline_docs_page(client: TestClient) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/calls" in schema["paths"]
    assert "bearer" in str(schema["components"]["securitySchemes"]).lower()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert "http://" not in page.text
    assert "https://" not in page.text
    assert client.get("/api/v1/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_one_call_carries_its_analysis(client: TestClient, bus: FakeBus) -> None:
    analysis = CallAnalyzedData(
        agent_id="demo", ok=True, summary="Order 1234 shipped.", disposition="resolved",
        extraction={"order_id": "1234"}, success=SuccessEvaluation(passed=True, reason="told"),
    )  # fmt: skip
    call = CallSummary(call_id="c1", status="ended", agent_id="demo", analysis=analysis)
    bus.replies[CALLS_GET] = CallReply(ok=True, call=call).model_dump_json().encode()
    body = client.get("/api/v1/calls/c1", headers=auth()).json()
    assert body["analysis"]["disposition"] == "resolved"
    assert body["analysis"]["extraction"] == {"order_id": "1234"}
    assert body["analysis"]["success"]["passed"] is True


def test_caller_memory_is_read_and_deleted_for_the_key_s_tenant(
    client: TestClient, bus: FakeBus
) -> None:
    profile = CallerProfile(number="+14155550100", name="Ada")
    bus.replies[MEMORY_DELETE] = (
        CallerMemoryReply(ok=True, profile=profile).model_dump_json().encode()
    )
    response = client.delete("/api/v1/memory/+14155550100", headers=auth())
    assert response.status_code == 200
    assert response.json()["name"] == "Ada"
    subject, sent = bus.requests[-1]
    assert subject == MEMORY_DELETE
    assert CallerRef.model_validate_json(sent) == CallerRef(tenant_id="acme", number="+14155550100")

    assert client.delete("/api/v1/memory/+1%20415", headers=auth()).status_code == 422
    assert (
        client.delete("/api/v1/memory/+14155550100", headers=auth(READ_ONLY_KEY)).status_code == 403
    )
    missing = RpcError(status=404, code="caller_not_found", message="no memory of this caller")
    bus.replies[MEMORY_GET] = CallerMemoryReply(ok=False, error=missing).model_dump_json().encode()
    gone = client.get("/api/v1/memory/+14155550100", headers=auth(READ_ONLY_KEY))
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "caller_not_found"
