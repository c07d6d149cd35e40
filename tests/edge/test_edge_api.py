"""The REST API on the edge in front of the real owners: audit, orchestrator, recorder,
campaigns and the gateway.

Tenant isolation is checked where the data lives: another tenant's call,
events and recording are "not found", however the request is made.
"""

from __future__ import annotations

import json
import time
import uuid
import wave
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import nats.js.errors
import pytest
from edge_stack import ADMIN, EdgeStack
from websockets.sync.client import connect

from voicebus.contracts.chains import CHAINS_VERIFY, ChainReport, ChainResult, VerifyChains
from voicebus.contracts.erasure import number_digest
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallInitiated,
    CallInitiatedData,
    Direction,
    EndReason,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import (
    AGENTS_GET,
    CALLS_GET,
    CALLS_LIST,
    AgentReply,
    CallsPage,
    GetAgent,
    ListCalls,
)
from voicebus.contracts.subjects import evt_filter
from voicebus.devkit.ports import free_port
from voicebus.runtime.rpc import TenantSigner
from voicebus.runtime.tenant_keys import generate_keys

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_key(http: httpx.Client, tenant: str) -> str:
    created = http.post(
        "/tenants", headers=bearer(ADMIN), json={"tenant_id": tenant, "name": tenant}
    )
    assert created.status_code in (201, 409), created.text
    key = http.post(
        f"/tenants/{tenant}/keys", headers=bearer(ADMIN), json={"name": "e2e", "scopes": ["admin"]}
    )
    assert key.status_code == 201, key.text
    token: str = key.json()["token"]
    return token


def poll(
    http: httpx.Client,
    path: str,
    token: str,
    until: Callable[[httpx.Response], bool] = lambda _r: True,
    timeout: float = 30.0,
) -> httpx.Response:
    """GET ``path`` until it answers 200 and ``until`` holds (audit stores asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(path, headers=bearer(token))
        if (response.status_code == 200 and until(response)) or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def call_events(tenant: str, call_id: str) -> tuple[CallInitiated, CallEnded]:
    source = "gateway/e2e"
    initiated = CallInitiated(
        tenant_id=tenant,
        call_id=call_id,
        source=source,
        data=CallInitiatedData(
            direction=Direction.INBOUND,
            provider="twilio",
            agent_id="demo",
            from_number="+14155550100",
            to_number="+14155550199",
        ),
    )
    ended = CallEnded(
        tenant_id=tenant,
        call_id=call_id,
        source=source,
        data=CallEndedData(reason=EndReason.CALLER_HANGUP, duration_s=1.0),
    )
    return initiated, ended


def write_recording(edge: EdgeStack, tenant: str, call_id: str, seconds: float = 1.0) -> bytes:
    """A finished stereo recording where the recorder keeps them."""
    path = edge.recordings / tenant / f"{call_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(int(8000 * seconds) * 4))
    return path.read_bytes()


def test_another_tenants_call_events_and_recording_are_not_found(edge: EdgeStack) -> None:
    call_id = new_id()
    with edge.client() as http:
        acme, globex = admin_key(http, "acme"), admin_key(http, "globex")
        edge.run(edge.publish(*call_events("acme", call_id)))

        mine = poll(http, f"/calls/{call_id}", acme, until=lambda r: r.json()["status"] == "ended")
        assert mine.status_code == 200, mine.text
        assert mine.json()["status"] == "ended"
        assert mine.json()["ended_reason"] == "caller_hangup"
        page = poll(
            http, f"/calls/{call_id}/events", acme, until=lambda r: len(r.json()["events"]) == 2
        )
        events = page.json()["events"]
        assert [e["type"] for e in events] == ["call.initiated.v1", "call.ended.v1"]
        listed: list[dict[str, Any]] = http.get("/calls", headers=bearer(acme)).json()["calls"]
        assert call_id in [c["call_id"] for c in listed]

        theirs = http.get(f"/calls/{call_id}", headers=bearer(globex))
        assert theirs.status_code == 404
        assert theirs.json()["error"]["code"] == "call_not_found"
        assert http.get(f"/calls/{call_id}/events", headers=bearer(globex)).status_code == 404
        other_list = http.get("/calls", headers=bearer(globex)).json()["calls"]
        assert call_id not in [c["call_id"] for c in other_list]

        audio = write_recording(edge, "acme", call_id)
        meta = http.get(f"/calls/{call_id}/recording", headers=bearer(acme))
        assert meta.status_code == 200, meta.text
        assert meta.json()["duration_s"] == 1.0
        assert meta.json()["channels"] == 2
        assert meta.json()["bytes"] == len(audio)
        download = http.get(f"/calls/{call_id}/recording.wav", headers=bearer(acme))
        assert download.status_code == 200
        assert download.headers["content-type"] == "audio/wav"
        assert download.content == audio
        assert http.get(f"/calls/{call_id}/recording", headers=bearer(globex)).status_code == 404
        assert (
            http.get(f"/calls/{call_id}/recording.wav", headers=bearer(globex)).status_code == 404
        )


async def _ask_calls(edge: EdgeStack, tenant: str, headers: dict[str, str] | None) -> CallsPage:
    assert edge.nc is not None
    body = ListCalls(tenant_id=tenant).model_dump_json().encode()
    reply = await edge.nc.request(CALLS_LIST, body, timeout=30, headers=headers)
    return CallsPage.model_validate_json(reply.data)


def test_owners_answer_a_tenants_request_only_when_the_edge_signed_it(edge: EdgeStack) -> None:
    with edge.client() as http:
        token = admin_key(http, "signed")
        call_id = new_id()
        edge.run(edge.publish(*call_events("signed", call_id)))
        listed = poll(http, "/calls", token, lambda r: len(r.json()["calls"]) == 1)
        assert listed.status_code == 200, listed.text  # the edge signs what it asks
    body = ListCalls(tenant_id="signed").model_dump_json().encode()
    signed = edge.signer.headers(CALLS_LIST, "signed", body)
    page = edge.run(_ask_calls(edge, "signed", signed))
    assert [c.call_id for c in page.calls] == [call_id]

    # Anyone else on the bus naming the tenant in the body is refused.
    other_key, _ = generate_keys()
    refused = {
        "unsigned": None,
        "signed for another tenant": edge.signer.headers(CALLS_LIST, "globex", body),
        "signed for another procedure": edge.signer.headers(CALLS_GET, "signed", body),
        "signed with another key": TenantSigner(other_key).headers(CALLS_LIST, "signed", body),
        "another body": edge.signer.headers(CALLS_LIST, "signed", body + b" "),
    }
    for why, headers in refused.items():
        reply = edge.run(_ask_calls(edge, "signed", headers))
        assert not reply.ok, why
        assert reply.error is not None
        assert (reply.error.status, reply.error.code) == (403, "tenant_unauthenticated"), why
    # What the gateway and media ask while serving a call needs no signature.
    assert edge.nc is not None
    request = GetAgent(tenant_id="default", agent_id="demo").model_dump_json().encode()
    agent = AgentReply.model_validate_json(edge.run(edge.nc.request(AGENTS_GET, request, 30)).data)
    assert agent.ok, agent.error


def test_a_recording_larger_than_one_chunk_downloads_whole(edge: EdgeStack) -> None:
    call_id = new_id()
    with edge.client() as http:
        acme = admin_key(http, "acme")
        audio = write_recording(edge, "acme", call_id, seconds=40.0)  # 1.28 MB: three chunks
        download = http.get(f"/calls/{call_id}/recording.wav", headers=bearer(acme))
        assert download.status_code == 200
        assert download.content == audio


def test_agents_come_from_the_orchestrator(edge: EdgeStack) -> None:
    with edge.client() as http:
        acme = admin_key(http, "acme")
        agents = http.get("/agents", headers=bearer(acme))
        assert agents.status_code == 200, agents.text
        assert "demo" in [a["agent_id"] for a in agents.json()]
        assert http.get("/agents/demo", headers=bearer(acme)).json()["agent_id"] == "demo"
        missing = http.get("/agents/no-such-agent", headers=bearer(acme))
        assert missing.status_code == 404


def test_a_placed_call_is_the_tenants_alone(edge: EdgeStack) -> None:
    with edge.client() as http:
        acme, globex = admin_key(http, "acme"), admin_key(http, "globex")
        placed = http.post(
            "/calls", headers=bearer(acme), json={"agent_id": "demo", "to_number": "+14155550123"}
        )
        assert placed.status_code == 202, placed.text
        call_id = placed.json()["call_id"]
        # The gateway handles its own command: whatever the outcome, audit records the call.
        mine = poll(http, f"/calls/{call_id}", acme)
        assert mine.status_code == 200, mine.text
        assert http.get(f"/calls/{call_id}", headers=bearer(globex)).status_code == 404


def test_campaigns_are_created_loaded_and_kept_to_their_tenant(edge: EdgeStack) -> None:
    with edge.client() as http:
        acme, globex = admin_key(http, "acme"), admin_key(http, "globex")
        spec = {"name": "Renewals", "agent_id": "demo", "caller_ids": ["+14155550100"]}
        created = http.post("/campaigns", headers=bearer(acme), json=spec)
        assert created.status_code == 201, created.text
        campaign_id = created.json()["campaign_id"]
        assert created.json()["status"] == "draft"

        csv = "phone,name\n+14155550101,Ada\n+14155550102,Grace\nnot-a-number,Bad\n"
        loaded = http.post(
            f"/campaigns/{campaign_id}/contacts",
            headers={**bearer(acme), "Content-Type": "text/csv"},
            content=csv.encode(),
        )
        assert loaded.status_code == 200, loaded.text
        report = loaded.json()
        assert report["loaded"] == 2
        assert report["rejected"] == 1
        assert report["errors"][0]["line"] == 4

        progress = http.get(f"/campaigns/{campaign_id}/progress", headers=bearer(acme))
        assert progress.status_code == 200, progress.text
        assert progress.json()["contacts"] == 2
        listed = http.get("/campaigns", headers=bearer(acme)).json()
        assert campaign_id in [c["campaign_id"] for c in listed]

        assert http.get(f"/campaigns/{campaign_id}", headers=bearer(globex)).status_code == 404
        theirs = http.get("/campaigns", headers=bearer(globex)).json()
        assert campaign_id not in [c["campaign_id"] for c in theirs]
        assert (
            http.post(f"/campaigns/{campaign_id}/cancel", headers=bearer(globex)).status_code == 404
        )
        report_csv = http.get(f"/campaigns/{campaign_id}/report", headers=bearer(acme))
        assert report_csv.status_code == 200
        assert report_csv.text.splitlines()[0].startswith("contact_id,phone")
        assert len(report_csv.text.strip().splitlines()) == 3


def test_a_browser_session_from_the_api_is_a_call_of_the_keys_tenant(edge: EdgeStack) -> None:
    with edge.client() as http:
        acme, globex = admin_key(http, "acme"), admin_key(http, "globex")
        created = http.post(
            "/browser-sessions",
            headers=bearer(acme),
            json={"agent_id": "demo-scripted", "context": {"customer_name": "Ada"}},
        )
        assert created.status_code == 201, created.text
        session = created.json()
        call_id = session["call_id"]
        assert session["ws_url"] == f"ws://127.0.0.1:{edge.media_port}/ws/browser"
        assert session["parameters"]["tenant_id"] == "acme"

        # The page talks to the gateway directly with what the edge handed over.
        with connect(session["ws_url"]) as ws:
            start = {"type": "start", "parameters": session["parameters"],
                     "format": {"encoding": "s16le", "sample_rate": 16000}}  # fmt: skip
            ws.send(json.dumps(start))
            for _ in range(25):
                ws.send(bytes(640))
            live = poll(http, f"/calls/{call_id}", acme,
                        until=lambda r: r.json()["status"] == "in_progress")  # fmt: skip
            assert live.json()["status"] == "in_progress", live.text
            ws.send(json.dumps({"type": "stop"}))
        ended = poll(http, f"/calls/{call_id}", acme, until=lambda r: r.json()["status"] == "ended")
        assert ended.json()["provider"] == "browser"
        assert ended.json()["ended_reason"] == "caller_hangup"
        assert http.get(f"/calls/{call_id}", headers=bearer(globex)).status_code == 404

        unknown = http.post("/browser-sessions", headers=bearer(acme), json={"agent_id": "nope"})
        assert unknown.status_code == 422

        # Browser calls count against the tenant's concurrent-call cap like any other call.
        capped = admin_key(http, "capped")
        limits = http.put("/tenants/capped/limits", headers=bearer(ADMIN),
                          json={"max_concurrent_calls": 1})  # fmt: skip
        assert limits.status_code == 200, limits.text
        body = {"agent_id": "demo-scripted"}
        assert http.post("/browser-sessions", headers=bearer(capped), json=body).status_code == 201
        full = http.post("/browser-sessions", headers=bearer(capped), json=body)
        assert full.status_code == 429, full.text
        assert full.json()["error"]["code"] == "concurrent_call_limit"


ERASED_NUMBER = "+14155550177"


def _calls_with(tenant: str, number: str, *, inbound: bool) -> tuple[str, list[Any]]:
    call_id = new_id()
    initiated, ended = call_events(tenant, call_id)
    data = initiated.data.model_copy(
        update={"from_number": number} if inbound else {"to_number": number}
    )
    return call_id, [initiated.model_copy(update={"data": data}), ended]


async def _remember(database_url: str, *tenants: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for tenant in tenants:
            await conn.execute(
                "INSERT INTO orchestrator.caller_memory (tenant_id, number, profile, updated_at) "
                "VALUES ($1, $2, $3::jsonb, now())",
                tenant, ERASED_NUMBER, json.dumps({"name": "Ada"}),
            )  # fmt: skip
    finally:
        await conn.close()


async def _verify_chain(edge: EdgeStack, tenant: str, call_id: str) -> ChainResult:
    assert edge.nc is not None
    body = VerifyChains(tenant_id=tenant, call_id=call_id).model_dump_json().encode()
    # As `voicebus audit verify` asks: signed with the edge's key, as audit requires.
    headers = edge.signer.headers(CHAINS_VERIFY, tenant, body)
    reply = await edge.nc.request(CHAINS_VERIFY, body, timeout=30, headers=headers)
    report = ChainReport.model_validate_json(reply.data)
    assert report.ok, report.error
    return report.results[0]


async def _stream_holds(edge: EdgeStack, tenant: str, call_id: str) -> bool:
    assert edge.nc is not None
    try:
        await edge.nc.jetstream().get_last_msg("VB_EVENTS", evt_filter(tenant, call_id))
    except nats.js.errors.NotFoundError:
        return False
    return True


def _campaign_with(http: httpx.Client, token: str, *numbers: str) -> str:
    spec = {"name": "Erasure", "agent_id": "demo", "caller_ids": ["+14155550100"]}
    created = http.post("/campaigns", headers=bearer(token), json=spec)
    assert created.status_code == 201, created.text
    campaign_id: str = created.json()["campaign_id"]
    csv = "phone\n" + "".join(f"{n}\n" for n in numbers)
    loaded = http.post(f"/campaigns/{campaign_id}/contacts", content=csv.encode(),
                       headers={**bearer(token), "Content-Type": "text/csv"})  # fmt: skip
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["loaded"] == len(numbers), loaded.text
    return campaign_id


def _contacts(http: httpx.Client, token: str, campaign_id: str) -> int:
    progress = http.get(f"/campaigns/{campaign_id}/progress", headers=bearer(token))
    assert progress.status_code == 200, progress.text
    count: int = progress.json()["contacts"]
    return count


def test_erasing_a_caller_by_number_reaches_every_owner_of_one_tenant_only(
    edge: EdgeStack,
) -> None:
    mine, my_events = _calls_with("acme", ERASED_NUMBER, inbound=True)
    dialed, dialed_events = _calls_with("acme", ERASED_NUMBER, inbound=False)
    theirs, their_events = _calls_with("globex", ERASED_NUMBER, inbound=True)
    with edge.client() as http:
        acme, globex = admin_key(http, "acme"), admin_key(http, "globex")
        # A webhook nobody answers: its deliveries of the calls wait in the outbox.
        hook = http.post("/webhooks", headers=bearer(acme),
                         json={"url": f"http://127.0.0.1:{free_port()}/hook",
                               "event_types": ["call.*"]})  # fmt: skip
        assert hook.status_code == 201, hook.text
        deliveries = f"/webhooks/{hook.json()['webhook_id']}/deliveries"
        edge.run(edge.publish(*my_events, *dialed_events, *their_events))
        for token, call_id in ((acme, mine), (acme, dialed), (globex, theirs)):
            stored = poll(http, f"/calls/{call_id}/events", token,
                          until=lambda r: len(r.json()["events"]) == 2)  # fmt: skip
            assert len(stored.json()["events"]) == 2, stored.text
        for call_id in (mine, dialed):
            queued = poll(http, f"{deliveries}?call_id={call_id}", acme,
                          until=lambda r: len(r.json()["deliveries"]) == 2)  # fmt: skip
            assert len(queued.json()["deliveries"]) == 2, queued.text
        write_recording(edge, "acme", mine)
        write_recording(edge, "globex", theirs)
        edge.run(_remember(edge.database_url, "acme", "globex"))
        my_campaign = _campaign_with(http, acme, ERASED_NUMBER, "+14155550178")
        their_campaign = _campaign_with(http, globex, ERASED_NUMBER)

        response = http.delete(f"/callers/{ERASED_NUMBER}", headers=bearer(acme))
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["erased"] == {
            "number_sha256": number_digest("acme", ERASED_NUMBER),
            "audit_calls": 2,
            "audit_events": 4,
            "recordings": 1,
            "memory_profiles": 1,
            "campaign_contacts": 1,
            "campaign_attempts": 0,
            "webhook_deliveries": 4,
        }

        # acme: tombstones with their chains intact, numbers cleared, nothing left elsewhere.
        for call_id in (mine, dialed):
            events = http.get(f"/calls/{call_id}/events", headers=bearer(acme)).json()["events"]
            assert [e["data"] for e in events] == [{"erased": True}] * 2
            call = http.get(f"/calls/{call_id}", headers=bearer(acme)).json()
            assert (call["from_number"], call["to_number"]) == (None, None)
            chain = edge.run(_verify_chain(edge, "acme", call_id))
            assert (chain.ok, chain.length, chain.erased) == (True, 2, 2), chain
            assert not edge.run(_stream_holds(edge, "acme", call_id))
        assert http.get(f"/calls/{mine}/recording", headers=bearer(acme)).status_code == 404
        assert http.get(f"/memory/{ERASED_NUMBER}", headers=bearer(acme)).status_code == 404
        assert _contacts(http, acme, my_campaign) == 1
        for call_id in (mine, dialed):
            left = http.get(f"{deliveries}?call_id={call_id}", headers=bearer(acme))
            assert left.json()["deliveries"] == [], left.text

        # globex: the same number, untouched.
        events = http.get(f"/calls/{theirs}/events", headers=bearer(globex)).json()["events"]
        assert events[0]["data"]["from_number"] == ERASED_NUMBER
        assert http.get(f"/calls/{theirs}/recording", headers=bearer(globex)).status_code == 200
        assert http.get(f"/memory/{ERASED_NUMBER}", headers=bearer(globex)).status_code == 200
        assert _contacts(http, globex, their_campaign) == 1
        assert edge.run(_stream_holds(edge, "globex", theirs))

        # The erasure is itself on record, without the number.
        record = poll(http, f"/calls/{report['erasure_id']}/events", acme,
                      until=lambda r: len(r.json()["events"]) == 1)  # fmt: skip
        assert [e["type"] for e in record.json()["events"]] == ["caller.erased.v1"]
        assert record.json()["events"][0]["data"] == report["erased"]
        assert ERASED_NUMBER not in record.text

        again = http.delete(f"/callers/{ERASED_NUMBER}", headers=bearer(acme))
        assert again.status_code == 200, again.text
        assert {k: v for k, v in again.json()["erased"].items() if k != "number_sha256"} == {
            "audit_calls": 0, "audit_events": 0, "recordings": 0, "memory_profiles": 0,
            "campaign_contacts": 0, "campaign_attempts": 0, "webhook_deliveries": 0,
        }  # fmt: skip
        bad = http.delete("/callers/not%20a%20number", headers=bearer(acme))
        assert bad.status_code == 422, bad.text


def _id_at(when: datetime) -> str:
    """A UUIDv7 created at ``when`` (a call id from the past)."""
    ms = int(when.timestamp() * 1000)
    rand = uuid.uuid4().int
    return str(uuid.UUID(int=(ms << 80) | (0x7 << 76) | (rand & (0xFFF << 64)) | (0b10 << 62)
                         | (rand & ((1 << 62) - 1))))  # fmt: skip


def _call_at(tenant: str, when: datetime) -> tuple[str, list[Any]]:
    call_id = _id_at(when)
    initiated, ended = call_events(tenant, call_id)
    said = TranscriptFinal(
        tenant_id=tenant, call_id=call_id, source="media/e2e", time=when + timedelta(seconds=1),
        data=TranscriptFinalData(utterance_id="u1", text="my card is 4111 1111 1111 1111",
                                 start_ms=0, end_ms=900),
    )  # fmt: skip
    return call_id, [
        initiated.model_copy(update={"time": when}),
        said,
        ended.model_copy(update={"time": when + timedelta(seconds=2)}),
    ]


async def _finish_contact(database_url: str, tenant: str, phone: str, when: datetime) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE campaigns.contacts SET state = 'done', last_attempt_at = $3 "
            "WHERE tenant_id = $1 AND phone = $2", tenant, phone, when,
        )  # fmt: skip
    finally:
        await conn.close()


def test_retention_erases_each_kind_of_a_tenants_data_past_its_days(edge: EdgeStack) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=10)
    old_call, old_events = _call_at("initech", old)
    recent_call, recent_events = _call_at("initech", recent)
    their_call, their_events = _call_at("globex", old)
    with edge.client() as http:
        initech, globex = admin_key(http, "initech"), admin_key(http, "globex")
        edge.run(edge.publish(*old_events, *recent_events, *their_events))
        for token, call_id in ((initech, old_call), (initech, recent_call), (globex, their_call)):
            stored = poll(http, f"/calls/{call_id}/events", token,
                          until=lambda r: len(r.json()["events"]) == 3)  # fmt: skip
            assert len(stored.json()["events"]) == 3, stored.text
        for tenant, call_id in (("initech", old_call), ("initech", recent_call),
                                ("globex", their_call)):  # fmt: skip
            write_recording(edge, tenant, call_id)
        mine = _campaign_with(http, initech, "+14155550181", "+14155550182")
        theirs = _campaign_with(http, globex, "+14155550181")
        for tenant in ("initech", "globex"):
            edge.run(_finish_contact(edge.database_url, tenant, "+14155550181", old))

        policy = {"events_days": 30, "transcripts_days": 7, "recordings_days": 30,
                  "contacts_days": 30}  # fmt: skip
        put = http.put("/tenants/initech/retention", headers=bearer(initech), json=policy)
        assert put.status_code == 200, put.text
        assert http.get("/tenants/initech/retention", headers=bearer(initech)).json() == policy
        bad = http.put("/tenants/initech/retention", headers=bearer(initech),
                       json={"events_days": 0})  # fmt: skip
        assert bad.status_code == 422, bad.text
        assert "events_days" in bad.text

        # The job runs every second on this stack: wait for its round to reach every owner.
        expired = poll(http, f"/calls/{old_call}/events", initech, timeout=60,
                       until=lambda r: all(e["data"] == {"erased": True}
                                           for e in r.json()["events"]))  # fmt: skip
        assert [e["data"] for e in expired.json()["events"]] == [{"erased": True}] * 3
        call = http.get(f"/calls/{old_call}", headers=bearer(initech)).json()
        assert (call["from_number"], call["to_number"]) == (None, None)
        kept = poll(http, f"/calls/{recent_call}/events", initech, timeout=60,
                    until=lambda r: r.json()["events"][1]["data"] == {"erased": True})  # fmt: skip
        data = [e["data"] for e in kept.json()["events"]]
        assert data[1] == {"erased": True}  # a transcript older than 7 days
        assert data[0]["from_number"] == "+14155550100"  # an event younger than 30 days
        assert "reason" in data[2]
        for call_id, erased in ((old_call, 3), (recent_call, 1)):
            chain = edge.run(_verify_chain(edge, "initech", call_id))
            assert (chain.ok, chain.length, chain.erased) == (True, 3, erased), chain
        deadline = time.monotonic() + 60
        while (edge.recordings / "initech" / f"{old_call}.wav").exists():
            assert time.monotonic() < deadline, "the old recording was not deleted"
            time.sleep(0.2)
        assert (edge.recordings / "initech" / f"{recent_call}.wav").exists()
        deadline = time.monotonic() + 60
        while _contacts(http, initech, mine) != 1:
            assert time.monotonic() < deadline, "the old finished contact was not deleted"
            time.sleep(0.2)

        # Another tenant without a policy keeps everything.
        events = http.get(f"/calls/{their_call}/events", headers=bearer(globex)).json()["events"]
        assert events[1]["data"]["text"].startswith("my card")
        assert (edge.recordings / "globex" / f"{their_call}.wav").exists()
        assert _contacts(http, globex, theirs) == 1
