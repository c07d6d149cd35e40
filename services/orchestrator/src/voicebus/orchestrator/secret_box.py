"""Webhook tools' secrets encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

``VB_ORCHESTRATOR_SECRETS_KEY`` holds one or more Fernet keys, comma-separated:
the first encrypts, all decrypt, so a key is rotated by putting the new one
first. Outside production a placeholder value derives a fixed development key
(production refuses placeholders at start).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from voicebus.orchestrator.errors import OrchestratorError
from voicebus.runtime.settings import is_placeholder_secret


class SecretsUnreadableError(OrchestratorError):
    """No configured key decrypts a stored secret (a key rotated out too early)."""


def fernet_keys(value: str) -> list[bytes]:
    """The Fernet keys in the setting's value.

    Raises:
        ValueError: a part is not a Fernet key; the value itself is never echoed.
    """
    if is_placeholder_secret(value):
        return [base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest())]
    keys: list[bytes] = []
    for part in (p.strip() for p in value.split(",")):
        try:
            Fernet(part.encode())
        except ValueError:
            raise ValueError(
                "VB_ORCHESTRATOR_SECRETS_KEY must be Fernet keys (32 url-safe base64 bytes), "
                "comma-separated"
            ) from None
        keys.append(part.encode())
    return keys


class SecretBox:
    """Encrypts a mapping of secret strings to one token and back.

    Args:
        keys: Fernet keys; the first encrypts.
    """

    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._count = len(keys)

    def seal(self, secrets: Mapping[str, str]) -> bytes:
        """The encrypted JSON of ``secrets``."""
        return self._fernet.encrypt(json.dumps(dict(secrets), sort_keys=True).encode())

    @property
    def key_count(self) -> int:
        """How many keys decrypt."""
        return self._count

    def rotate(self, token: bytes) -> bytes:
        """``token`` sealed again with the first key.

        Raises:
            SecretsUnreadableError: no configured key decrypts it.
        """
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise SecretsUnreadableError("stored tool secrets cannot be decrypted") from None

    def open(self, token: bytes) -> dict[str, str]:
        """The secrets again.

        Raises:
            SecretsUnreadableError: no configured key decrypts the token.
        """
        try:
            plain = self._fernet.decrypt(token)
        except InvalidToken:
            raise SecretsUnreadableError("stored tool secrets cannot be decrypted") from None
        value = json.loads(plain)
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
