"""Component tests of the campaign routes: what they forward to the campaigns service."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from edge_fakes import TENANT_KEY, FakeBus, edge_client
from fastapi.testclient import TestClient

from voicebus.contracts import campaigns as c
from voicebus.contracts.rpc import RpcError

pytestmark = pytest.mark.component

AUTH = {"Authorization": f"Bearer {TENANT_KEY}"}
SPEC = {"name": "Renewals", "agent_id": "demo", "caller_ids": ["+14155550100"]}


def campaign(status: c.CampaignStatus = c.CampaignStatus.DRAFT) -> c.Campaign:
    now = datetime.now(UTC)
    return c.Campaign(
        campaign_id="cmp-1",
        tenant_id="acme",
        status=status,
        spec=c.CampaignSpec.model_validate(SPEC),
        created_at=now,
        updated_at=now,
    )


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def client(bus: FakeBus) -> TestClient:
    return edge_client(bus, rate=1000)


def test_create_list_and_act_forward_the_tenant(client: TestClient, bus: FakeBus) -> None:
    reply = c.CampaignReply(ok=True, campaign=campaign()).model_dump_json().encode()
    bus.replies[c.CAMPAIGNS_CREATE] = reply
    created = client.post("/api/v1/campaigns", headers=AUTH, json=SPEC)
    assert created.status_code == 201, created.text
    subject, body = bus.requests[-1]
    assert subject == c.CAMPAIGNS_CREATE
    assert c.CreateCampaign.model_validate_json(body).tenant_id == "acme"

    bus.replies[c.CAMPAIGNS_START] = (
        c.CampaignReply(ok=True, campaign=campaign(c.CampaignStatus.RUNNING))
        .model_dump_json()
        .encode()
    )
    started = client.post("/api/v1/campaigns/cmp-1/start", headers=AUTH)
    assert started.json()["status"] == "running"
    bus.replies[c.CAMPAIGNS_PAUSE] = (
        c.CampaignReply(
            ok=False, error=RpcError(status=409, code="invalid_transition", message="draft")
        )
        .model_dump_json()
        .encode()
    )
    refused = client.post("/api/v1/campaigns/cmp-1/pause", headers=AUTH)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invalid_transition"
    assert client.post("/api/v1/campaigns/cmp-1/explode", headers=AUTH).status_code == 422

    invalid = client.post("/api/v1/campaigns", headers=AUTH, json={**SPEC, "caller_ids": ["5"]})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["fields"][0]["field"].startswith("caller_ids")


def test_the_report_is_csv_fetched_page_by_page(client: TestClient, bus: FakeBus) -> None:
    def page(body: bytes) -> bytes:
        after = c.ReportPageRequest.model_validate_json(body).after_contact_id
        rows = [
            c.ReportRow(contact_id=after + 1, phone="+14155550101", state="done", attempts=1,
                        outcome="completed", duration_s=3.5, recording_id=None,
                        last_call_id=None, last_attempt_at=None),
        ] if after < 3 else []  # fmt: skip
        nxt = after + 1 if after < 3 else None
        return c.ReportReply(ok=True, rows=rows, next_after=nxt).model_dump_json().encode()

    bus.handlers[c.CAMPAIGNS_REPORT] = page
    response = client.get("/api/v1/campaigns/cmp-1/report", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0] == ",".join(c.REPORT_COLUMNS)
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]


def test_contacts_are_uploaded_in_whole_line_chunks(client: TestClient, bus: FakeBus) -> None:
    chunks: list[c.UploadChunk] = []

    def upload(body: bytes) -> bytes:
        chunk = c.UploadChunk.model_validate_json(body)
        chunks.append(chunk)
        report = c.UploadReport(upload_id=chunk.upload_id, rows=len(chunks), loaded=len(chunks),
                                merged=0, dnc=0, rejected=0, header="phone,name")  # fmt: skip
        return c.UploadReply(ok=True, report=report).model_dump_json().encode()

    bus.handlers[c.CONTACTS_UPLOAD] = upload
    lines = ["phone,name"] + [f"+1415555{i:04d},Person {i}" for i in range(40_000)]
    body = ("\n".join(lines) + "\n").encode()
    response = client.post(
        "/api/v1/campaigns/cmp-1/contacts",
        headers={**AUTH, "Content-Type": "text/csv"},
        content=body,
    )
    assert response.status_code == 200, response.text
    assert len(chunks) > 1
    assert [ch.seq for ch in chunks] == list(range(len(chunks)))
    assert [ch.final for ch in chunks] == [False] * (len(chunks) - 1) + [True]
    assert len({ch.upload_id for ch in chunks}) == 1
    assert chunks[0].header is None
    assert all(ch.header == "phone,name" for ch in chunks[1:])
    assert b"".join(ch.data for ch in chunks) == body
    first_lines = [ch.first_line for ch in chunks]
    assert first_lines[0] == 1
    assert first_lines[1] == 1 + chunks[0].data.count(b"\n")

    empty = client.post("/api/v1/campaigns/cmp-1/contacts", headers=AUTH, content=b"  ")
    assert empty.status_code == 422
    assert empty.json()["error"]["fields"][0]["field"] == "body"


def test_the_dnc_list_is_paged_for_the_tenant(client: TestClient, bus: FakeBus) -> None:
    entry = c.DncEntry(phone="+14155550100", reason="asked", added_at=datetime.now(UTC))
    bus.replies[c.DNC_LIST] = (
        c.DncListReply(ok=True, entries=[entry], next_after="+14155550100")
        .model_dump_json()
        .encode()
    )
    listed = client.get(
        "/api/v1/dnc",
        headers=AUTH,
        params={"campaign_id": "cmp-1", "after": "+1415", "limit": 1},
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["entries"][0]["phone"] == "+14155550100"
    assert listed.json()["next_after"] == "+14155550100"
    sent = json.loads(bus.requests[-1][1])
    assert sent == {"tenant_id": "acme", "campaign_id": "cmp-1", "after": "+1415", "limit": 1}
    bad = client.get("/api/v1/dnc", headers=AUTH, params={"limit": 0})
    assert bad.status_code == 422
    assert "limit" in bad.text
    not_found = RpcError(code="not_found", message="no campaign 'cmp-9'", status=404)
    bus.replies[c.DNC_LIST] = c.DncListReply(ok=False, error=not_found).model_dump_json().encode()
    assert client.get("/api/v1/dnc?campaign_id=cmp-9", headers=AUTH).status_code == 404


def test_dnc_changes_name_the_tenant(client: TestClient, bus: FakeBus) -> None:
    bus.replies[c.DNC_ADD] = c.DncReply(ok=True, changed=1).model_dump_json().encode()
    added = client.post("/api/v1/dnc", headers=AUTH, json={"numbers": ["+14155550100"]})
    assert added.status_code == 200
    assert added.json()["changed"] == 1
    sent = json.loads(bus.requests[-1][1])
    assert sent["tenant_id"] == "acme"
    assert client.post("/api/v1/dnc", headers=AUTH, json={"numbers": []}).status_code == 422
