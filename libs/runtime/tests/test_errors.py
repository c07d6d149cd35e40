"""ProviderError: the retry rule decided once."""

from __future__ import annotations

import pytest

from voicebus.runtime.errors import BusError, ProviderError, ProvisioningError, VoicebusError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (409, False),
        (422, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (302, False),
    ],
)
def test_from_status(status: int, retryable: bool) -> None:
    error = ProviderError.from_status(status, provider="twilio", message="create call")
    assert error.retryable is retryable
    assert error.status == status
    assert error.provider == "twilio"
    assert str(error) == f"twilio: create call (HTTP {status})"
    assert isinstance(error, VoicebusError)


def test_explicit_retryable() -> None:
    error = ProviderError("connection reset", retryable=True)
    assert error.retryable
    assert error.status is None


def test_hierarchy() -> None:
    error = ProvisioningError("VB_EVENTS", "subjects overlap")
    assert isinstance(error, BusError)
    assert "VB_EVENTS" in str(error)
    assert "subjects overlap" in str(error)
