"""Provider input with control characters: stripped, so the call's events are still valid."""

from __future__ import annotations

import pytest

from voicebus.contracts.events import Direction, parse_event
from voicebus.gateway.call_events import call_error, call_initiated
from voicebus.gateway.parameters import CallIdentity, context_from_query

pytestmark = pytest.mark.unit


def test_webhook_context_and_numbers_lose_their_control_characters() -> None:
    context = context_from_query({"ctx_note": "a\u0000b", "ctx_name": "Zoë\x1b[2J", "x": "1"})
    assert context == {"note": "ab", "name": "Zoë[2J"}
    identity = CallIdentity(
        call_id="c1", tenant_id="acme", agent_id="demo", from_number="+1415\x00555",
        to_number=None, context={"raw": "x\x07y"}, direction=Direction.INBOUND,
    )  # fmt: skip
    event = call_initiated(identity, "twilio", "CA\x001", "gateway/1")
    assert event.data.from_number == "+1415555"
    assert event.data.context == {"raw": "xy"}
    assert event.data.provider_call_id == "CA1"
    assert parse_event(event.to_bytes()) == event
    error = call_error("acme", "c1", "gateway/1", "provider_error", "bad\x00 answer")  # type: ignore[arg-type]
    assert error.data.message == "bad answer"
