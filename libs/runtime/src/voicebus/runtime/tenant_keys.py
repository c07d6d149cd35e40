"""The edge's signing key for request tenants: Ed25519, keys as base64url of 32 bytes.

What is signed and why is in :mod:`voicebus.runtime.rpc.tenancy`; this module holds only
the keys and the signature, so settings can check a key at start.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

TENANT_HEADER: Final = "Vb-Tenant"
ISSUED_HEADER: Final = "Vb-Tenant-Issued"
SIGNATURE_HEADER: Final = "Vb-Tenant-Signature"
MAX_AGE_S: Final = 120.0
"""How old (or, for clocks ahead, how far in the future) a signature may be."""
_CONTEXT: Final = b"voicebus-tenant-v1"


class TenantSignatureError(ValueError):
    """A request's tenant signature is missing, invalid, expired or for another request."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_keys() -> tuple[str, str]:
    """A fresh ``(signing key, public key)`` pair."""
    seed = _b64encode(Ed25519PrivateKey.generate().private_bytes_raw())
    return seed, public_key_of(seed)


def public_key_of(signing_key: str) -> str:
    """The public key that checks what ``signing_key`` signs."""
    private = Ed25519PrivateKey.from_private_bytes(_decode_key(signing_key, "signing key"))
    return _b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def _decode_key(text: str, what: str) -> bytes:
    try:
        raw = _b64decode(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"the tenant {what} must be 32 bytes in base64url (voicebus secrets init)")
    return raw


def _message(subject: str, tenant: str, issued: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return b"\n".join(
        (_CONTEXT, subject.encode(), tenant.encode(), issued.encode(), digest.encode())
    )


class TenantSigner:
    """Makes the headers vouching for a request's tenant.

    Args:
        signing_key: the Ed25519 seed, base64url.
    """

    def __init__(self, signing_key: str) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(_decode_key(signing_key, "signing key"))

    def headers(self, subject: str, tenant: str, body: bytes) -> dict[str, str]:
        """The three headers for ``body`` sent to ``subject`` on behalf of ``tenant``."""
        issued = str(int(time.time() * 1000))
        signature = self._key.sign(_message(subject, tenant, issued, body))
        return {
            TENANT_HEADER: tenant,
            ISSUED_HEADER: issued,
            SIGNATURE_HEADER: _b64encode(signature),
        }


class TenantVerifier:
    """Reads the tenant a signed request was sent for.

    Args:
        public_key: the edge's Ed25519 public key, base64url.
    """

    def __init__(self, public_key: str) -> None:
        self._key = Ed25519PublicKey.from_public_bytes(_decode_key(public_key, "public key"))

    def tenant(
        self, subject: str, headers: Mapping[str, str] | None, body: bytes, now: float | None = None
    ) -> str:
        """The signed tenant (``""``: tenant-wide).

        Raises:
            TenantSignatureError: no signature, a bad one, or one too old or for another
                request.
        """
        headers = headers or {}
        tenant = headers.get(TENANT_HEADER)
        issued = headers.get(ISSUED_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if tenant is None or issued is None or signature is None:
            raise TenantSignatureError("the request is not signed by the edge")
        try:
            age_s = (time.time() if now is None else now) - int(issued) / 1000
            self._key.verify(_b64decode(signature), _message(subject, tenant, issued, body))
        except (ValueError, InvalidSignature):
            raise TenantSignatureError("the request's tenant signature is invalid") from None
        if abs(age_s) > MAX_AGE_S:
            raise TenantSignatureError("the request's tenant signature has expired")
        return tenant
