"""Replay guard of signed provider webhooks: each signature nonce is accepted once.

Plivo V3 and Vobiz sign a webhook over its URL (and Plivo its parameters) and a
random nonce, with no timestamp: a captured request stays valid for ever. The first
use of a nonce creates ``<provider>.<sha256(nonce)>`` in the KV bucket
``vb_webhook_nonces``; creating a key that exists fails on the server, so a
replayed request is refused on whichever gateway instance it reaches, for the
bucket's TTL (a day).
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from voicebus.contracts.streams import WEBHOOK_NONCES
from voicebus.runtime.service import Service


def nonce_key(provider: str, nonce: str) -> str:
    """The bucket key of ``nonce`` (hashed: nonces may hold characters keys cannot)."""
    return f"{provider}.{hashlib.sha256(nonce.encode()).hexdigest()[:40]}"


class Nonces(Protocol):
    """Remembers signature nonces."""

    async def first_use(self, provider: str, nonce: str) -> bool:
        """True the first time ``nonce`` is seen for ``provider``; False for a replay."""
        ...


class WebhookNonces:
    """:class:`Nonces` on the ``vb_webhook_nonces`` bucket (opened once NATS is up)."""

    def __init__(self, kv: KeyValue | None = None) -> None:
        self._kv = kv

    async def open(self, service: Service) -> None:
        """Connected hook: use the service's bucket."""
        self._kv = await service.js.key_value(WEBHOOK_NONCES.bucket)

    async def first_use(self, provider: str, nonce: str) -> bool:
        """Create the nonce's key; False when it exists."""
        if self._kv is None:
            raise RuntimeError("webhook nonces used before NATS was connected")
        try:
            await self._kv.create(nonce_key(provider, nonce), b"1")
        except KeyWrongLastSequenceError:
            return False
        return True
