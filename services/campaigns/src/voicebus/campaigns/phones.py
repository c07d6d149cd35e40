"""Phone numbers: parse to E.164 and find the callee's time zones (``phonenumbers``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as pn_timezone

UNKNOWN_ZONE = "Etc/Unknown"


class InvalidNumberError(ValueError):
    """Not a valid phone number; the message says why (without the number)."""


@dataclass(frozen=True, slots=True)
class Number:
    """A valid number, normalized."""

    e164: str
    region: str | None
    zones: tuple[str, ...]
    """IANA zones the number may be in; empty when unknown."""


def parse(raw: str, default_region: str | None = "US") -> Number:
    """Normalize ``raw`` to E.164 and look its zones up.

    Args:
        raw: as typed by a person (spaces, dashes, parentheses; ``+`` for international).
        default_region: region for numbers written without ``+``.

    Raises:
        InvalidNumberError: unparseable, or not a valid number for its region.
    """
    text = raw.strip()
    if not text:
        raise InvalidNumberError("phone number is empty")
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumberError(f"not a phone number ({_parse_reason(exc)})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumberError("not a valid phone number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return Number(e164, phonenumbers.region_code_for_number(parsed), zones_for(e164))


def normalize(raw: str, default_region: str | None = "US") -> str:
    """E.164 of ``raw``; raises :class:`InvalidNumberError`."""
    return parse(raw, default_region).e164


@lru_cache(maxsize=4096)
def zones_for(e164: str) -> tuple[str, ...]:
    """Time zones of an E.164 number (empty tuple when ``phonenumbers`` does not know)."""
    parsed = phonenumbers.parse(e164, None)
    zones = tuple(z for z in pn_timezone.time_zones_for_number(parsed) if z != UNKNOWN_ZONE)
    return zones


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }
    return reasons.get(exc.error_type, "unparseable")
