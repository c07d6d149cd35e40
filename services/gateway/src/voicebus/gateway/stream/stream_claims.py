"""Single use of stream tokens: one media session per call, across every gateway instance.

The first media WebSocket that starts a call creates the key ``<call>`` in the
KV bucket ``vb_stream_claims``; creating a key that exists fails on the server,
so a second WebSocket for the same call (a replayed ``start``, a leaked URL) is
refused wherever it lands, and the first session keeps the call. Entries outlive
every token that could name the call (the bucket's TTL is the longest token
lifetime), so a claim is never forgotten while a replay could still pass the
signature check.
"""

from __future__ import annotations

from typing import Protocol

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue


class Claims(Protocol):
    """Claims a call's one media session."""

    async def claim(self, call_id: str, instance: str) -> bool:
        """True if this is the call's first session; False if one already claimed it."""
        ...


class StreamClaims:
    """:class:`Claims` on the ``vb_stream_claims`` bucket (opened once NATS is up)."""

    def __init__(self) -> None:
        self._kv: KeyValue | None = None

    def open(self, kv: KeyValue) -> None:
        """Use ``kv`` (the ``vb_stream_claims`` bucket)."""
        self._kv = kv

    async def claim(self, call_id: str, instance: str) -> bool:
        """Create ``<call>`` (value: the instance); False when it exists."""
        if self._kv is None:
            raise RuntimeError("stream claims used before NATS was connected")
        try:
            await self._kv.create(call_id, instance.encode())
        except KeyWrongLastSequenceError:
            return False
        return True
