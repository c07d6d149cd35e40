"""Plivo-style status callbacks (Plivo and Vobiz send the same parameters), normalized."""

from __future__ import annotations

import pytest

from voicebus.contracts.events import AmdResult
from voicebus.gateway.providers.outbound import CallStatus, StatusUpdate
from voicebus.gateway.providers.plivo.outbound import status_update

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"CallUUID": "u1", "CallStatus": "ringing"}, StatusUpdate(CallStatus.RINGING, "u1")),
        ({"CallUUID": "u1", "CallStatus": "in-progress"}, StatusUpdate(CallStatus.ANSWERED, "u1")),
        (
            {"CallUUID": "u1", "CallStatus": "busy", "HangupCause": "USER_BUSY",
             "HangupCauseCode": "3010"},
            StatusUpdate(CallStatus.BUSY, "u1", error_code="3010"),
        ),
        (
            {"RequestUUID": "r1", "CallStatus": "timeout", "HangupCause": "NO_ANSWER"},
            StatusUpdate(CallStatus.NO_ANSWER, "r1", error_code="NO_ANSWER"),
        ),
        ({"CallStatus": "no-answer"}, StatusUpdate(CallStatus.NO_ANSWER)),
        ({"CallStatus": "failed"}, StatusUpdate(CallStatus.FAILED)),
        ({"CallStatus": "cancel"}, StatusUpdate(CallStatus.CANCELED)),
        ({"CallStatus": "completed"}, StatusUpdate(CallStatus.COMPLETED)),
        (
            {"CallUUID": "u1", "Machine": "true", "CallStatus": "in-progress"},
            StatusUpdate(CallStatus.MACHINE, "u1", amd=AmdResult.MACHINE),
        ),
        (
            {"CallUUID": "u1", "Machine": "false"},
            StatusUpdate(CallStatus.HUMAN, "u1", amd=AmdResult.HUMAN),
        ),
        ({"CallUUID": "u1", "Event": "Ring"}, StatusUpdate(CallStatus.RINGING, "u1")),
        ({"Event": "StartApp"}, StatusUpdate(CallStatus.ANSWERED)),
        ({"Event": "Hangup"}, None),
        ({"CallStatus": "queued-forever"}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_status_callbacks(params: dict[str, str], expected: StatusUpdate | None) -> None:
    assert status_update(params) == expected
