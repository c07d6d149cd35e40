"""Provider credentials encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

``VB_EDGE_CREDENTIALS_KEY`` holds one or more Fernet keys, comma-separated:
the first encrypts, all of them decrypt, so a key is rotated by putting the new
one first. Outside production a placeholder value derives a fixed development key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from voicebus.edge.tenancy.errors import CredentialsError
from voicebus.runtime.settings import is_placeholder_secret


def fernet_keys(value: str) -> list[bytes]:
    """The Fernet keys in a setting's value.

    Raises:
        ValueError: a part is not a Fernet key (32 url-safe base64 bytes), without
            echoing the value.
    """
    if is_placeholder_secret(value):
        # Development only: ServiceSettings refuses placeholders in production.
        return [base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest())]
    keys: list[bytes] = []
    for part in (p.strip() for p in value.split(",")):
        try:
            Fernet(part.encode())
        except ValueError:
            raise ValueError(
                "VB_EDGE_CREDENTIALS_KEY must be Fernet keys (32 url-safe base64 bytes), "
                "comma-separated"
            ) from None
        keys.append(part.encode())
    return keys


class CredentialCipher:
    """Encrypts a provider account's fields to one token and back.

    Args:
        keys: Fernet keys; the first encrypts.
    """

    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._count = len(keys)

    def encrypt(self, secrets: Mapping[str, str], fields: Mapping[str, str]) -> bytes:
        """The encrypted JSON of an account's secrets and its other fields."""
        payload = {"secrets": dict(secrets), "fields": dict(fields)}
        return self._fernet.encrypt(json.dumps(payload, sort_keys=True).encode())

    @property
    def key_count(self) -> int:
        """How many keys decrypt."""
        return self._count

    def rotate(self, token: bytes) -> bytes:
        """``token`` encrypted again with the first key.

        Raises:
            CredentialsError: no configured key decrypts it.
        """
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise CredentialsError("stored credentials cannot be decrypted") from None

    def decrypt(self, token: bytes) -> tuple[dict[str, str], dict[str, str]]:
        """``(secrets, fields)`` again.

        Raises:
            CredentialsError: no configured key decrypts it (a rotated-out key).
        """
        try:
            plain = self._fernet.decrypt(token)
        except InvalidToken:
            raise CredentialsError("stored credentials cannot be decrypted") from None
        payload = json.loads(plain)
        return _strings(payload.get("secrets")), _strings(payload.get("fields"))


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}
