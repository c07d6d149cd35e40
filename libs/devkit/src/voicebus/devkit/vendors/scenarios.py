"""How a stand-in vendor behaves, chosen by the URL (``/s/<scenario>/...``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

SLOW_START_S: Final = 0.8
"""Delay before the first byte of an answer in the ``slow`` scenario."""
TEST_KEY: Final = "vendor-standin-key"  # the stand-ins' only valid key; not secret


class Scenario(StrEnum):
    """What the stand-in does with a request."""

    OK = "ok"
    SLOW = "slow"
    ERROR_MID = "error_mid"
    UNAUTHORIZED = "unauthorized"
    MALFORMED = "malformed"
    CLOSE_MID = "close_mid"
    HANG = "hang"

    @classmethod
    def of(cls, value: str | None) -> Scenario:
        """The scenario named in a path (``ok`` when none or unknown)."""
        try:
            return cls(value or "ok")
        except ValueError:
            return cls.OK


@dataclass
class Recorded:
    """One request a stand-in received (no key: only whether it was the valid one).

    Attributes:
        vendor: which vendor's API.
        path: the request path.
        query: its query parameters.
        scenario: the scenario it ran.
        key_ok: it carried the stand-ins' key.
        body: what it sent (JSON bodies and text messages; audio only counted).
        audio_bytes: audio received (STT) or sent (TTS).
    """

    vendor: str
    path: str
    query: dict[str, str]
    scenario: Scenario
    key_ok: bool
    body: list[Any] = field(default_factory=list)
    audio_bytes: int = 0
