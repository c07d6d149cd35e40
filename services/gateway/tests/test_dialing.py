"""Originate commands that cannot be dialed are answered with events (pure)."""

from __future__ import annotations

import pytest

from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import CallEnded, CallError, EndReason, ErrorCode
from voicebus.gateway.dialing import refuse_originate

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
