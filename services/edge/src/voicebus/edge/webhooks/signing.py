"""The signature of a webhook delivery. Pure.

``X-Voicebus-Signature: t=<unix seconds>,v1=<hex>``: the HMAC-SHA256, keyed with the
subscription's secret, of the ASCII ``"<t>."`` followed by the exact body bytes
(the same scheme as webhook tools' requests). ``X-Voicebus-Timestamp`` repeats ``t``.
A receiver refuses an old timestamp, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

SIGNATURE_HEADER: Final = "X-Voicebus-Signature"
TIMESTAMP_HEADER: Final = "X-Voicebus-Timestamp"
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    """A fresh signing secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body).rsplit("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))
