"""Toll-fraud guard: may a tenant call this number? Pure: values in, a refusal (or None) out."""

from __future__ import annotations

from collections.abc import Collection

import phonenumbers


def region_of(number: str) -> str | None:
    """The ISO 3166 alpha-2 region of an E.164 number, or None when it has none known."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed)


def destination_refusal(number: str, allowed: Collection[str] | None) -> str | None:
    """Why ``number`` may not be called under the allow-list ``allowed`` (None: anywhere)."""
    if allowed is None:
        return None
    region = region_of(number)
    if region is None or region not in allowed:
        return f"destination country {region or 'unknown'} is not allowed for this tenant"
    return None
