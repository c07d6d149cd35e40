"""API keys: ``vb_<key id>_<secret>``. Pure: no database, no HTTP.

The key id is public (it names the key in listings and finds its row); the
secret is shown once, at creation, and only its argon2 hash is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PREFIX: Final = "vb"
_TOKEN: Final = re.compile(r"^vb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# argon2id with a moderate cost: verified once per key and process (see ``KeyCache``).
_HASHER: Final = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class Scope(StrEnum):
    """What a key may do."""

    CALLS_READ = "calls:read"
    CALLS_WRITE = "calls:write"
    AGENTS_READ = "agents:read"
    AGENTS_WRITE = "agents:write"
    """Create, change and archive the tenant's agents and webhook tools."""
    RECORDINGS_READ = "recordings:read"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"
    WEBHOOKS_READ = "webhooks:read"
    """See the tenant's webhooks and their delivery log."""
    WEBHOOKS_WRITE = "webhooks:write"
    """Create, change and delete webhooks; redeliver."""
    USAGE_READ = "usage:read"
    ADMIN = "admin"
    """Manage the tenant's own keys and provider accounts; implies every other scope."""


ALL_SCOPES: Final = tuple(Scope)


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly made key: ``token`` is shown to its owner once, ``hash`` is stored."""

    key_id: str
    token: str
    hash: str


def new_key() -> NewKey:
    """A random key and the argon2 hash of its secret."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id=key_id, token=f"{PREFIX}_{key_id}_{secret}", hash=_HASHER.hash(secret))


def parse_token(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed token, else None."""
    match = _TOKEN.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def verify(stored_hash: str, secret: str) -> bool:
    """True if ``secret`` matches the stored argon2 hash (constant time in the secret)."""
    try:
        return bool(_HASHER.verify(stored_hash, secret))
    except (VerificationError, InvalidHashError):
        return False


def fingerprint(token: str) -> str:
    """A digest of a token for the in-process cache of verified keys (never logged)."""
    return hashlib.sha256(token.encode()).hexdigest()


def allows(granted: frozenset[str], needed: Scope) -> bool:
    """Whether a key with ``granted`` scopes may do what ``needed`` guards."""
    return Scope.ADMIN.value in granted or needed.value in granted
