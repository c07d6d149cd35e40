"""Call-ownership leases in the KV bucket ``vb_call_owners``.

One instance of each service owns a live call. Its claim is a KV entry
``<service>.<call>`` whose value is the instance id, created only if absent
(compare-and-set), so two instances can never both believe they own a call.
The bucket's TTL expires an entry that is not rewritten in time: the owner
renews every ``ttl / 3``; if it dies, the lease lapses and another instance
may claim the call mid-call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from voicebus.contracts import streams

log = logging.getLogger(__name__)


class CallLeases:
    """The leases one service instance holds.

    Args:
        kv: the ``vb_call_owners`` bucket.
        service: service name, e.g. ``media``.
        instance: this instance's id (the lease value).
        ttl_s: the bucket's TTL; renewals run every third of it.
    """

    def __init__(
        self, kv: KeyValue, service: str, instance: str, ttl_s: float = streams.CALL_OWNERS.ttl_s
    ) -> None:
        self._kv = kv
        self._service = service
        self._instance = instance.encode()
        self._ttl_s = ttl_s
        self._held: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> frozenset[str]:
        """Call ids whose lease this instance holds."""
        return frozenset(self._held)

    def _key(self, call_id: str) -> str:
        return streams.owner_key(self._service, call_id)

    async def owner(self, call_id: str) -> str | None:
        """The instance holding the call's lease, if any."""
        try:
            entry = await self._kv.get(self._key(call_id))
        except KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None

    async def claim(self, call_id: str) -> bool:
        """Take the call's lease if nobody holds it. True if this instance now holds it."""
        key = self._key(call_id)
        try:
            self._held[call_id] = await self._kv.create(key, self._instance)
            return True
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return False  # released between the two calls: the next claim attempt decides
        if entry.value == self._instance and entry.revision is not None:
            self._held[call_id] = entry.revision
            return True
        return False

    async def renew(self) -> list[str]:
        """Rewrite every held lease; returns the calls whose lease was lost meanwhile."""
        lost = []
        for call_id, revision in list(self._held.items()):
            try:
                self._held[call_id] = await self._kv.update(
                    self._key(call_id), self._instance, last=revision
                )
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                # Expired and taken (or deleted): this instance must let the call go.
                del self._held[call_id]
                lost.append(call_id)
                log.warning("call lease lost", extra={"call_id": call_id})
        return lost

    async def release(self, call_id: str) -> None:
        """Give the call's lease up (the call ended); a lease not held is left alone."""
        revision = self._held.pop(call_id, None)
        if revision is None:
            return
        with contextlib.suppress(KeyWrongLastSequenceError, KeyNotFoundError):
            await self._kv.delete(self._key(call_id), last=revision)

    def start(self) -> None:
        """Renew held leases in the background until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._renew_forever(), name="call-lease-renewal")

    async def stop(self) -> None:
        """Stop renewing and release every held lease (a clean shutdown hands calls over)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for call_id in list(self._held):
            await self.release(call_id)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_s / 3)
            try:
                await self.renew()
            except Exception:  # a NATS outage: keep trying, the leases may still be valid
                log.exception("call lease renewal failed")
