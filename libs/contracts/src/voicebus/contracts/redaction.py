"""Personal data taken out of text before it is published or stored.

An agent's ``redaction`` settings name what its calls' transcripts and replies must
never carry: card numbers (Luhn-checked, so an order number of the same length stays),
US social security numbers, e-mail addresses, long runs of digits (account numbers,
PINs, phone numbers read out) and patterns of the tenant's own. What matches becomes
a label such as ``[card]``, so a reader still sees that something was said there.

Pure functions on strings; media applies them to ``transcript.*`` before publishing,
the orchestrator to ``agent.reply``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Kind(StrEnum):
    """What a built-in detector finds."""

    CARD = "card"
    SSN = "ssn"
    EMAIL = "email"
    DIGITS = "digits"


# Digits with single spaces or dashes between groups ("4111 1111-1111 1111").
_CARD: Final = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_SSN: Final = re.compile(r"(?<!\d)\d{3}([- ]?)\d{2}\1\d{4}(?!\d)")
_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_MAX_PATTERNS: Final = 16


class RedactionSettings(BaseModel):
    """What an agent's calls must never publish or store verbatim."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kinds: list[Kind] = Field(
        default_factory=list, description="Built-in detectors to apply.",
        examples=[["card", "ssn", "email"]],
    )  # fmt: skip
    min_digits: int = Field(
        default=6, ge=4, le=32,
        description="With ``digits``: a run of at least this many digits (spaces and "
        "dashes between them allowed) is redacted.",
    )  # fmt: skip
    patterns: list[str] = Field(
        default_factory=list, max_length=_MAX_PATTERNS,
        description="Regular expressions of the tenant's own (e.g. a member id format); "
        "a match becomes ``[redacted]``.",
        examples=[[r"\bM-\d{6}\b"]],
    )  # fmt: skip

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            if len(pattern) > 256:
                raise ValueError(f"patterns[{i}]: longer than 256 characters")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"patterns[{i}]: not a regular expression: {exc}") from None
        return value

    @property
    def active(self) -> bool:
        """Whether anything is redacted at all."""
        return bool(self.kinds or self.patterns)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group(0)


@lru_cache(maxsize=256)
def _digits(min_digits: int) -> re.Pattern[str]:
    return re.compile(rf"(?<![\d-])\d(?:[ -]?\d){{{min_digits - 1},}}(?![\d-])")


@lru_cache(maxsize=256)
def _own(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def redact(text: str, settings: RedactionSettings | None) -> str:
    """``text`` with everything ``settings`` names replaced by a label.

    Cards go first (a card number is also a long run of digits), then SSNs, e-mail
    addresses, digit runs and the tenant's patterns.
    """
    if settings is None or not settings.active or not text:
        return text
    kinds = set(settings.kinds)
    if Kind.CARD in kinds:
        text = _CARD.sub(_card, text)
    if Kind.SSN in kinds:
        text = _SSN.sub("[ssn]", text)
    if Kind.EMAIL in kinds:
        text = _EMAIL.sub("[email]", text)
    if Kind.DIGITS in kinds:
        text = _digits(settings.min_digits).sub("[digits]", text)
    for pattern in settings.patterns:
        text = _own(pattern).sub("[redacted]", text)
    return text
