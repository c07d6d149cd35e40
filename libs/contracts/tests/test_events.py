"""The event envelope, the discriminated union and its validation errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from voicebus.contracts import ids
from voicebus.contracts.events import (
    CALL_EVENT,
    EVENT_CLASSES,
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    EndReason,
    TranscriptFinal,
    TranscriptFinalData,
    parse_event,
)

pytestmark = pytest.mark.unit


def started(**over: object) -> CallStarted:
    data = CallStartedData(
        direction="inbound",
        provider="twilio",
        agent_id="demo",
        gateway_instance="gw-1",
        context={"order_id": "1234"},
    )
    fields: dict[str, object] = {
        "tenant_id": "acme",
        "call_id": "c1",
        "source": "gateway/gw-1",
        "data": data,
    }
    fields.update(over)
    return CallStarted.model_validate(fields)


def test_round_trip_through_the_shared_adapter() -> None:
    event = started()
    parsed = parse_event(event.to_bytes())
    assert isinstance(parsed, CallStarted)
    assert parsed == event
    assert parsed.subject == "vb.evt.acme.c1.call.started"
    assert parsed.data.audio.sample_rate == 8000


def test_envelope_uses_cloudevents_names() -> None:
    body = json.loads(started().to_bytes())
    assert {"specversion", "id", "type", "source", "time", "tenant_id", "call_id", "data"} <= set(
        body
    )
    assert body["type"] == "call.started.v1"
    assert body["time"].endswith("Z")


def test_every_event_type_is_versioned_and_unique() -> None:
    types = [cls.model_fields["type"].default for cls in EVENT_CLASSES]
    assert len(types) == len(set(types)) >= 19
    assert all(t.endswith(".v1") for t in types)
    assert {cls.event_name for cls in EVENT_CLASSES} >= {
        "call.initiated", "call.ringing", "call.started", "call.ended", "call.error",
        "speech.user.started", "speech.user.stopped", "transcript.partial", "transcript.final",
        "agent.reply", "agent.speech.started", "agent.speech.stopped",
        "agent.speech.interrupted", "tool.called", "tool.result", "flow.node_entered",
        "dtmf.received", "amd.detected", "recording.ready",
    }  # fmt: skip


def test_events_are_frozen() -> None:
    event = started()
    with pytest.raises(ValidationError, match="frozen"):
        event.call_id = "c2"  # type: ignore[misc]


def test_missing_field_names_the_field() -> None:
    body = json.loads(started().to_bytes())
    del body["data"]["agent_id"]
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(body))
    locs = [err["loc"] for err in info.value.errors()]
    assert ("call.started.v1", "data", "agent_id") in locs


def test_call_id_with_a_dot_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"invalid call id 'c\.1'"):
        started(call_id="c.1")


def test_unknown_type_is_refused() -> None:
    body = json.loads(started().to_bytes())
    body["type"] = "call.exploded.v1"
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        parse_event(body)


def test_naive_time_is_refused_and_aware_time_becomes_utc() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        started(time=datetime(2026, 1, 1, 12, 0))
    aware = started(time="2026-01-01T12:00:00+02:00")
    assert aware.time == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_newer_producers_extra_fields_are_ignored() -> None:
    body = json.loads(started().to_bytes())
    body["data"]["added_in_a_later_version"] = 1
    body["traceparent"] = "00-abc-def-01"
    assert isinstance(parse_event(body), CallStarted)


def test_ended_reason_enum_is_enforced() -> None:
    ok = CallEnded(
        tenant_id="acme", call_id="c1", source="gateway/gw-1",
        data=CallEndedData(reason=EndReason.GATEWAY_LOST, duration_s=3.5),
    )  # fmt: skip
    assert CALL_EVENT.validate_json(ok.to_bytes()) == ok
    body = json.loads(ok.to_bytes())
    body["data"]["reason"] = "bored"
    with pytest.raises(ValidationError, match="reason"):
        parse_event(body)


def test_ids_sort_by_creation() -> None:
    made = [ids.new_id() for _ in range(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    first = TranscriptFinal(
        tenant_id="acme", call_id="c1", source="media/m1",
        data=TranscriptFinalData(utterance_id="u1", text="hi", start_ms=0, end_ms=500),
    )  # fmt: skip
    assert abs(ids.id_time_ms(first.id) - first.time.timestamp() * 1000) < 1000
