"""Outbound dialing decisions: refusals, dial requests, signed callback URLs, status events."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import SecretStr

from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import CallEnded, CallError, Direction, EndReason, ErrorCode
from voicebus.gateway.dialing import (
    callback_identity,
    dial_failed,
    dial_request,
    refuse_originate,
    status_events,
)
from voicebus.gateway.parameters import CallIdentity, InvalidStreamParametersError
from voicebus.gateway.providers import get
from voicebus.gateway.providers.outbound import CallStatus, StatusUpdate
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.errors import ProviderError

pytestmark = pytest.mark.unit


def test_refusal_names_the_provider_and_ends_the_call() -> None:
    command = OriginateCall(
        tenant_id="acme", call_id="c1", source="api/1",
        data=OriginateCallData(agent_id="demo", to_number="+14155550199", provider="plivo"),
    )  # fmt: skip
    error, ended = refuse_originate(command, "gateway/gw1", providers=["twilio"])
    assert isinstance(error, CallError)
    assert isinstance(ended, CallEnded)
    assert error.data.code is ErrorCode.PROVIDER_ERROR
    assert "plivo" in error.data.message
    assert "twilio" in error.data.message
    assert "+14155550199" not in error.data.message  # no personal data in messages
    assert ended.data.reason is EndReason.FAILED
    assert (error.call_id, ended.call_id, ended.tenant_id) == ("c1", "c1", "acme")
    assert error.source == ended.source == "gateway/gw1"


def _command(**data: object) -> OriginateCall:
    return OriginateCall(
        tenant_id="acme", call_id="c1", source="api/1",
        data=OriginateCallData(agent_id="demo", to_number="+14155550199",
                               context={"name": "Ada"}, **data),  # type: ignore[arg-type]
    )  # fmt: skip


SETTINGS = GatewaySettings(
    public_url="https://gw.example.com/vb", stream_secret=SecretStr("k" * 32)
)
KEY = b"k" * 32


def test_dial_request_urls_carry_the_signed_identity_but_no_phone_number() -> None:
    request = dial_request(_command(detect_machine=True), get("twilio"), SETTINGS, "+1415", 1000.0)
    assert request.answer_url.startswith("https://gw.example.com/vb/telephony/twilio/answer/c1?")
    assert request.status_url.startswith("https://gw.example.com/vb/telephony/twilio/status/c1?")
    assert request.stream_url.startswith("wss://gw.example.com:8090/ws/twilio?")
    assert request.amd_url == request.status_url
    for url in (request.answer_url, request.status_url):
        assert "4155550199" not in url
    stream = dict(parse_qsl(urlsplit(request.stream_url).query))
    assert (stream["to_number"], stream["from_number"]) == ("+14155550199", "+1415")
    query = dict(parse_qsl(urlsplit(request.status_url).query))
    identity = callback_identity(query, "c1", KEY, 1000.0 + 3600)
    assert (identity.tenant_id, identity.agent_id, identity.direction) == (
        "acme", "demo", Direction.OUTBOUND,
    )  # fmt: skip
    assert identity.context == {"name": "Ada", "amd": "1"}  # media's detector runs too


def test_a_callback_url_for_another_call_or_forged_is_refused() -> None:
    request = dial_request(_command(), get("twilio"), SETTINGS, None, 1000.0)
    query = dict(parse_qsl(urlsplit(request.status_url).query))
    with pytest.raises(InvalidStreamParametersError):
        callback_identity(query, "c2", KEY, 1000.0)
    with pytest.raises(InvalidStreamParametersError):
        callback_identity(query | {"tenant_id": "other"}, "c1", KEY, 1000.0)
    with pytest.raises(InvalidStreamParametersError):
        callback_identity(query, "c1", b"another key", 1000.0)


IDENTITY = CallIdentity("c1", "acme", "demo", direction=Direction.OUTBOUND)


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        (CallStatus.RINGING, "call.ringing.v1"),
        (CallStatus.BUSY, "call.ended.v1"),
        (CallStatus.NO_ANSWER, "call.ended.v1"),
        (CallStatus.FAILED, "call.ended.v1"),
        (CallStatus.CANCELED, "call.ended.v1"),
        (CallStatus.MACHINE, "amd.detected.v1"),
        (CallStatus.HUMAN, "amd.detected.v1"),
    ],
)
def test_statuses_become_events(status: CallStatus, event_type: str) -> None:
    (event,) = status_events(IDENTITY, StatusUpdate(status, "CA1", error_code="486"), "gw/1")
    assert event.type == event_type
    assert (event.tenant_id, event.call_id) == ("acme", "c1")


def test_answered_and_completed_need_no_event() -> None:
    for status in (CallStatus.INITIATED, CallStatus.ANSWERED, CallStatus.COMPLETED):
        assert status_events(IDENTITY, StatusUpdate(status), "gw/1") == []


def test_a_busy_call_keeps_the_providers_code() -> None:
    (event,) = status_events(IDENTITY, StatusUpdate(CallStatus.BUSY, error_code="486"), "gw/1")
    assert isinstance(event, CallEnded)
    assert (event.data.reason, event.data.provider_error_code) == (EndReason.BUSY, "486")


def test_a_refused_dial_becomes_provider_error_with_the_code() -> None:
    error = ProviderError("twilio: create call: error 21211", retryable=False, code="21211")
    call_error, ended = dial_failed(_command(), error, "gw/1")
    assert isinstance(ended, CallEnded)
    assert (ended.data.reason, ended.data.provider_error_code) == (
        EndReason.PROVIDER_ERROR, "21211",
    )  # fmt: skip
    assert call_error.type == "call.error.v1"


def test_a_retried_status_callback_yields_the_same_event_id() -> None:
    update = StatusUpdate(CallStatus.BUSY)
    first, second = (status_events(IDENTITY, update, "gw/1")[0] for _ in range(2))
    assert first.id == second.id
    (ringing,) = status_events(IDENTITY, StatusUpdate(CallStatus.RINGING), "gw/1")
    assert ringing.id != first.id
