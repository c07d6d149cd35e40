"""The erasure route against a scripted bus, and retention policies' cut-offs (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from edge_fakes import READ_ONLY_KEY, TENANT_KEY, FakeBus, edge_client

from voicebus.contracts.erasure import (
    AUDIT_ERASE,
    CAMPAIGNS_ERASE,
    RECORDINGS_ERASE,
    AuditErased,
    CampaignsErased,
    EraseCaller,
    EraseRecordings,
    RecordingsErased,
    number_digest,
)
from voicebus.contracts.events import CallerErased
from voicebus.contracts.retention import AUDIT_RETENTION, CAMPAIGNS_RETENTION, RECORDER_RETENTION
from voicebus.contracts.rpc import MEMORY_DELETE, CallerMemoryReply, RpcError
from voicebus.edge.retention_job import owners_for
from voicebus.edge.tenancy.retention import RetentionPolicy

pytestmark = pytest.mark.component

NUMBER = "+14155550100"


def auth(token: str = TENANT_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_erasure_asks_every_owner_for_the_keys_tenant_and_publishes_no_number() -> None:
    bus = FakeBus()
    bus.replies[CAMPAIGNS_ERASE] = (
        CampaignsErased(ok=True, contacts=1, attempts=2, call_ids=["c2", "c3"])
        .model_dump_json()
        .encode()
    )
    bus.replies[AUDIT_ERASE] = (
        AuditErased(ok=True, calls=2, events=9, call_ids=["c1", "c2"]).model_dump_json().encode()
    )
    bus.replies[RECORDINGS_ERASE] = (
        RecordingsErased(ok=True, recordings=3).model_dump_json().encode()
    )
    missing = CallerMemoryReply(ok=False, error=RpcError(status=404, code="caller_not_found",
                                                         message="no memory"))  # fmt: skip
    bus.replies[MEMORY_DELETE] = missing.model_dump_json().encode()
    client = edge_client(bus)
    response = client.delete(f"/api/v1/callers/{NUMBER}", headers=auth())
    assert response.status_code == 200, response.text
    erased = response.json()["erased"]
    assert erased == {
        "number_sha256": number_digest("acme", NUMBER), "audit_calls": 2, "audit_events": 9,
        "recordings": 3, "memory_profiles": 0, "campaign_contacts": 1, "campaign_attempts": 2,
        "webhook_deliveries": 0,  # no webhook log on this edge
    }  # fmt: skip
    asked = dict(bus.requests)
    assert EraseCaller.model_validate_json(asked[AUDIT_ERASE]) == EraseCaller(
        tenant_id="acme", number=NUMBER
    )
    # The recordings of every call either owner named, once each.
    assert EraseRecordings.model_validate_json(asked[RECORDINGS_ERASE]).call_ids == [
        "c1", "c2", "c3"
    ]  # fmt: skip
    (event,) = bus.published
    assert isinstance(event, CallerErased)
    assert event.tenant_id == "acme"
    assert event.call_id == response.json()["erasure_id"]
    assert NUMBER not in event.model_dump_json()


def test_an_erasure_stops_at_an_owner_that_does_not_answer_and_needs_admin() -> None:
    bus = FakeBus()  # no owner answers: 503, and nothing is recorded as erased
    client = edge_client(bus)
    down = client.delete(f"/api/v1/callers/{NUMBER}", headers=auth())
    assert down.status_code == 503
    assert down.headers["retry-after"] == "1"
    assert bus.published == []
    refused = client.delete(f"/api/v1/callers/{NUMBER}", headers=auth(READ_ONLY_KEY))
    assert refused.status_code == 403
    assert client.delete("/api/v1/callers/a%20b", headers=auth()).status_code == 422


@pytest.mark.unit
def test_a_policy_becomes_cut_offs_and_only_the_owners_concerned_are_asked() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    policy = RetentionPolicy(events_days=30, transcripts_days=7)
    request = policy.request("acme", now)
    assert request.events_before == now - timedelta(days=30)
    assert request.transcripts_before == now - timedelta(days=7)
    assert (request.recordings_before, request.contacts_before) == (None, None)
    assert owners_for(request) == [AUDIT_RETENTION]
    everything = RetentionPolicy(1, 1, 1, 1).request("acme", now)
    assert owners_for(everything) == [AUDIT_RETENTION, RECORDER_RETENTION, CAMPAIGNS_RETENTION]
    assert RetentionPolicy().empty
    assert owners_for(RetentionPolicy().request("acme", now)) == []
