"""Toll-fraud guard at the dialer: may this tenant's call go to this number? Pure.

The edge refuses such a ``POST /calls`` already; checking again where every dial
passes covers campaigns and anything else that orders a call.
"""

from __future__ import annotations

from collections.abc import Collection

import phonenumbers


def destination_refusal(number: str, allowed: Collection[str] | None) -> str | None:
    """Why ``number`` may not be dialed under ``allowed`` (ISO 3166 alpha-2; None: anywhere)."""
    if allowed is None:
        return None
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        region = None
    if region is None or region not in allowed:
        return f"destination country {region or 'unknown'} is not allowed for this tenant"
    return None
