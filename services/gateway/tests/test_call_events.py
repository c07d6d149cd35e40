"""The gateway's call events, built from plain values (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voicebus.contracts.events import EndReason, ErrorCode, parse_event
from voicebus.gateway.call_events import (
    call_ended,
    call_error,
    call_initiated,
    call_started,
    dtmf_received,
)
from voicebus.gateway.parameters import CallIdentity
from voicebus.gateway.providers.base import StreamStart

pytestmark = pytest.mark.unit

CALL = CallIdentity("c1", "acme", "demo", "+14155550100", None, {"customer": "Ada"})
SOURCE = "gateway/gw1"


def test_initiated_and_started_describe_the_same_call() -> None:
    initiated = call_initiated(CALL, "twilio", "CA1", SOURCE)
    started = call_started(CALL, "twilio", StreamStart("MZ1", "CA1"), 8000, SOURCE, "gw1")
    for event in (initiated, started):
        assert (event.tenant_id, event.call_id, event.source) == ("acme", "c1", SOURCE)
        assert event.data.provider == "twilio"
        assert event.data.provider_call_id == "CA1"
        assert event.data.context == {"customer": "Ada"}
        assert event.data.from_number == "+14155550100"
        assert event.data.to_number is None
        assert parse_event(event.to_bytes()) == event
    assert started.data.stream_id == "MZ1"
    assert started.data.audio.sample_rate == 8000
    assert started.data.gateway_instance == "gw1"


def test_ended_rounds_and_never_goes_negative() -> None:
    assert call_ended(CALL, EndReason.CALLER_HANGUP, 12.34567, SOURCE).data.duration_s == 12.346
    assert call_ended(CALL, EndReason.AGENT_HANGUP, -0.1, SOURCE).data.duration_s == 0.0


def test_error_names_the_gateway() -> None:
    error = call_error("acme", "c1", SOURCE, ErrorCode.SIGNATURE_INVALID, "bad", security=True)
    assert error.data.service == "gateway"
    assert error.data.security is True
    assert error.data.retryable is False


def test_dtmf_accepts_keypad_keys_only() -> None:
    assert dtmf_received(CALL, "#", SOURCE).data.digits == "#"
    with pytest.raises(ValidationError):
        dtmf_received(CALL, "x", SOURCE)
