"""The console's session cookie, its CSRF check, the calls filters and the live feed route:
FastAPI TestClient over the real routes, a fake bus, the fixed keys."""

from __future__ import annotations

import json

import pytest
from edge_fakes import OPERATOR, TENANT_KEY, FakeBus, FakeFeed, edge_client
from fastapi.testclient import TestClient

from voicebus.contracts.events import CallEnded, CallEndedData, EndReason
from voicebus.contracts.rpc import CALLS_LIST, ListCalls
from voicebus.edge.api import Edge
from voicebus.edge.api.console_session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SessionSigner,
    csrf_ok,
)
from voicebus.edge.api.routes_events import sse_message

KEY_ID = TENANT_KEY[3:15]


@pytest.fixture
def bus() -> FakeBus:
    bus = FakeBus()
    bus.replies[CALLS_LIST] = b'{"ok": true, "calls": []}'
    bus.replies["vb.rpc.orchestrator.agents.check_context"] = b'{"ok": true, "agent_id": "demo"}'
    return bus


@pytest.fixture
def client(bus: FakeBus) -> TestClient:
    return edge_client(bus, rate=1000)


def log_in(client: TestClient) -> str:
    response = client.post("/api/v1/session", json={"api_key": TENANT_KEY})
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    return csrf


@pytest.mark.unit
def test_a_cookie_is_refused_when_forged_expired_or_from_another_secret() -> None:
    signer = SessionSigner("secret-one", ttl_s=60)
    cookie, session = signer.issue(KEY_ID, now=1000.0)
    assert signer.verify(cookie, now=1059.0) == session
    assert signer.verify(cookie, now=1060.0) is None  # expired
    assert SessionSigner("secret-two", ttl_s=60).verify(cookie, now=1000.0) is None
    key_id, expires, csrf, mac = cookie.split(".")
    assert signer.verify(f"{key_id}.{int(expires) + 999}.{csrf}.{mac}", now=1000.0) is None
    assert signer.verify(f"0123456789ff.{expires}.{csrf}.{mac}", now=1000.0) is None
    assert signer.verify("garbage", now=1000.0) is None
    assert csrf_ok(session, "GET", None)
    assert not csrf_ok(session, "POST", None)
    assert not csrf_ok(session, "DELETE", "x" * 32)
    assert csrf_ok(session, "PUT", session.csrf)


@pytest.mark.component
def test_login_sets_an_httponly_strict_cookie_and_the_session_reads(client: TestClient) -> None:
    response = client.post("/api/v1/session", json={"api_key": TENANT_KEY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tenant_id"] == "acme"
    assert body["key_id"] == KEY_ID
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    csrf = next(c for c in cookies if c.startswith(f"{CSRF_COOKIE}="))
    assert "HttpOnly" in session
    assert "samesite=strict" in session.lower()
    assert "HttpOnly" not in csrf  # the page reads it to send the header
    assert TENANT_KEY not in " ".join(cookies)  # the key's secret never goes in a cookie
    assert body["csrf_token"] in csrf

    whoami = client.get("/api/v1/session")
    assert whoami.status_code == 200
    assert whoami.json()["key_id"] == KEY_ID
    assert client.get("/api/v1/calls").status_code == 200  # no Authorization header


@pytest.mark.component
def test_bad_logins_are_refused(client: TestClient) -> None:
    wrong = client.post("/api/v1/session", json={"api_key": "vb_0123456789ff_" + "x" * 43})
    assert wrong.status_code in (401, 503)  # no database in this test: 503, else 401
    assert SESSION_COOKIE not in wrong.cookies
    missing = client.post("/api/v1/session", json={})
    assert missing.status_code == 422
    assert "api_key" in missing.text
    assert client.get("/api/v1/session").status_code == 401


@pytest.mark.component
def test_the_operator_token_opens_an_operator_session_bound_to_it(client: TestClient) -> None:
    response = client.post("/api/v1/session", json={"api_key": OPERATOR})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["operator"] is True
    assert body["tenant_id"] is None
    assert body["key_id"] is None
    cookies = " ".join(response.headers.get_list("set-cookie"))
    assert OPERATOR not in cookies  # the token never goes in a cookie
    assert "HttpOnly" in cookies
    assert "samesite=strict" in cookies.lower()
    assert client.get("/api/v1/session").json()["operator"] is True
    # Operator routes through the cookie: reads need no header, writes need the CSRF token.
    assert client.get("/api/v1/tenants").status_code != 401
    refused = client.post("/api/v1/tenants", json={"tenant_id": "t1", "name": "T"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    # No tenant data for the operator, with the session as with the token.
    assert client.get("/api/v1/calls").json()["error"]["code"] == "tenant_key_required"
    # Another operator token signs differently: the session ends when the token changes.
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie is not None
    assert SessionSigner("s", 60, operator_token="a").verify(cookie, 0) is None
    signer_a = SessionSigner("s", 60, operator_token="a")
    issued, _ = signer_a.issue("operator", now=0.0)
    assert signer_a.verify(issued, now=1.0) is not None
    assert SessionSigner("s", 60, operator_token="b").verify(issued, now=1.0) is None


@pytest.mark.component
def test_writes_through_the_cookie_need_the_csrf_header(client: TestClient, bus: FakeBus) -> None:
    csrf = log_in(client)
    call = {"agent_id": "demo", "to_number": "+14155550199"}
    refused = client.post("/api/v1/calls", json=call)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    wrong = client.post("/api/v1/calls", json=call, headers={"X-CSRF-Token": "y" * 32})
    assert wrong.status_code == 403
    assert bus.originated == []
    placed = client.post("/api/v1/calls", json=call, headers={"X-CSRF-Token": csrf})
    assert placed.status_code == 202, placed.text
    assert len(bus.originated) == 1


@pytest.mark.component
def test_logout_clears_the_cookies_and_needs_the_csrf_header(client: TestClient) -> None:
    csrf = log_in(client)
    assert client.delete("/api/v1/session").status_code == 403
    out = client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/v1/calls").status_code == 401


@pytest.mark.component
def test_the_calls_filters_reach_audit_and_bad_ones_are_named(
    client: TestClient, bus: FakeBus
) -> None:
    log_in(client)
    query = {
        "agent_id": "demo", "direction": "outbound", "provider": "twilio",
        "status": "ended", "ended_reason": "caller_hangup", "phone": "+14155550100",
        "since": "2026-12-01T00:00:00Z", "until": "2026-12-02T00:00:00+00:00",
    }  # fmt: skip
    assert client.get("/api/v1/calls", params=query).status_code == 200
    request = ListCalls.model_validate_json(bus.requests[-1][1])
    assert request.tenant_id == "acme"
    assert (request.agent_id, request.direction, request.provider) == ("demo", "outbound", "twilio")
    assert (request.ended_reason, request.phone) == ("caller_hangup", "+14155550100")
    assert request.since is not None
    assert request.since.isoformat() == "2026-12-01T00:00:00+00:00"
    for name, value in (("phone", "555-0100"), ("direction", "sideways"), ("since", "monday")):
        bad = client.get("/api/v1/calls", params={name: value})
        assert bad.status_code == 422, name
        assert name in bad.text


@pytest.mark.component
def test_the_live_feed_streams_the_sessions_tenants_events(client: TestClient) -> None:
    log_in(client)
    ended = CallEnded(
        tenant_id="acme",
        call_id="c1",
        source="gateway/test",
        data=CallEndedData(reason=EndReason.CALLER_HANGUP, duration_s=3.0),
    )
    feed = _feed(client)
    feed.queued["acme"] = [ended.to_bytes(), b"not json"]
    feed.queued["globex"] = [ended.model_copy(update={"tenant_id": "globex"}).to_bytes()]
    with client.stream("GET", "/api/v1/events/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    assert f"id: {ended.id}\nevent: call.ended.v1\ndata: " in text
    assert text.count("event: call.ended.v1") == 1  # globex's event is not in acme's stream
    assert "unreadable event skipped" in text
    assert text.endswith("event: overflow\ndata: {}\n\n")  # the fake feed ends: so does the stream
    assert [s.closed for s in feed.opened] == [True]  # the subscription went with the stream
    data = next(line for line in text.splitlines() if line.startswith("data: {"))
    assert json.loads(data[6:])["call_id"] == "c1"


@pytest.mark.unit
def test_an_sse_message_is_one_data_line() -> None:
    message = sse_message(b'{"id": "e1", "type": "x.v1", "data": {"text": "a\\nb"}}').decode()
    data = '{"id":"e1","type":"x.v1","data":{"text":"a\\nb"}}'
    assert message == f"id: e1\nevent: x.v1\ndata: {data}\n\n"


def _feed(client: TestClient) -> FakeFeed:
    feed = _edge(client).feed
    assert isinstance(feed, FakeFeed)
    return feed


def _edge(client: TestClient) -> Edge:
    edge: Edge = client.app.state.edge  # type: ignore[attr-defined]
    return edge


@pytest.mark.component
def test_a_key_holds_a_bounded_number_of_live_streams(bus: FakeBus) -> None:
    one = edge_client(bus, rate=1000, live_streams_per_key=1)
    for _ in range(3):  # each stream ends (the fake feed runs dry): its place is given back
        with one.stream("GET", "/api/v1/events/stream", headers=auth()) as response:
            assert response.status_code == 200
            assert "event: overflow" in "".join(response.iter_text())
    none = edge_client(bus, rate=1000, live_streams_per_key=0)
    refused = none.get("/api/v1/events/stream", headers=auth())
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_streams"
    assert refused.headers["Retry-After"] == "5"


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TENANT_KEY}"}
