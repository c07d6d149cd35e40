"""How events change a call's row (pure)."""

from __future__ import annotations

import pytest

from voicebus.audit.calls import CallStatus, call_update
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    EndReason,
    TranscriptFinal,
    TranscriptFinalData,
)

pytestmark = pytest.mark.unit
ENV = {"tenant_id": "acme", "call_id": "c1", "source": "test/1"}


def test_started_sets_parties_and_status() -> None:
    event = CallStarted(
        **ENV,
        data=CallStartedData(
            direction="inbound", provider="twilio", agent_id="demo", gateway_instance="gw",
            from_number="+14155550100", to_number="+14155550199",
        ),
    )  # fmt: skip
    update = call_update(event)
    assert update["status"] is CallStatus.IN_PROGRESS
    assert update["started_at"] == event.time
    assert (update["agent_id"], update["from_number"]) == ("demo", "+14155550100")


def test_ended_sets_reason_and_duration() -> None:
    event = CallEnded(**ENV, data=CallEndedData(reason=EndReason.GATEWAY_LOST, duration_s=12.5))
    update = call_update(event)
    assert update["status"] is CallStatus.ENDED
    assert (update["ended_reason"], update["duration_s"]) == ("gateway_lost", 12.5)


def test_other_events_only_make_sure_the_call_exists() -> None:
    event = TranscriptFinal(
        **ENV, data=TranscriptFinalData(utterance_id="u", text="hi", start_ms=0, end_ms=1)
    )
    assert call_update(event) == {"tenant_id": "acme", "call_id": "c1"}


def test_status_order() -> None:
    assert CallStatus.INITIATED < CallStatus.RINGING < CallStatus.IN_PROGRESS < CallStatus.ENDED
