"""Folding one batch's call updates: the same rules as between batches."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voicebus.audit.calls import CallStatus
from voicebus.audit.store import fold_call_updates

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_one_update_per_call_later_values_win_and_none_keeps() -> None:
    updates = [
        {"tenant_id": "t", "call_id": "a", "status": CallStatus.IN_PROGRESS, "provider": "twilio",
         "started_at": T0},
        {"tenant_id": "t", "call_id": "b"},
        {"tenant_id": "t", "call_id": "a", "status": CallStatus.RINGING},  # late: no rewind
        {"tenant_id": "t", "call_id": "a", "provider": None, "ended_reason": "caller_hangup"},
    ]  # fmt: skip
    folded = {u["call_id"]: u for u in fold_call_updates(updates)}
    assert set(folded) == {"a", "b"}
    a = folded["a"]
    assert a["status"] is CallStatus.IN_PROGRESS
    assert a["provider"] == "twilio"
    assert a["started_at"] == T0
    assert a["ended_reason"] == "caller_hangup"
    assert folded["b"]["status"] is CallStatus.INITIATED


def test_same_call_id_in_two_tenants_stays_two_calls() -> None:
    folded = fold_call_updates(
        [{"tenant_id": "t1", "call_id": "a"}, {"tenant_id": "t2", "call_id": "a"}]
    )
    assert len(folded) == 2


def test_stream_sequence_from_both_ack_subject_forms() -> None:
    from voicebus.audit.consumer import stream_sequence

    assert stream_sequence("$JS.ACK.VB_EVENTS.audit-call-events.1.4242.17.1700000000000.3") == 4242
    v2 = "$JS.ACK._.ACCHASH.VB_EVENTS.audit-call-events.1.4243.17.1700000000000.3.tok"
    assert stream_sequence(v2) == 4243
    assert stream_sequence("_INBOX.abc") is None
