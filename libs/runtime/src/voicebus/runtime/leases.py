"""Call-ownership leases in the KV bucket ``vb_call_owners``.

One instance of each service owns a live call. Its claim is a KV entry
``<service>.<call>`` whose value is the instance id, created only if absent
(compare-and-set), so two instances can never both believe they own a call.
The bucket's TTL expires an entry that is not rewritten in time: the owner
renews every ``ttl / 3``; if it dies, the lease lapses and another instance
may claim the call mid-call. A renewal that finds the lease changed means another
instance took the call: ``on_lost`` tells the domain code to stop serving it.

The gateway holds a lease per live call too (service ``gateway``): the set of
``gateway.<call>`` keys is the set of live calls, which is how an instance
finds calls nobody serves any more (see :mod:`voicebus.runtime.claims`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from nats.errors import Error as NatsError
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from voicebus.contracts import streams

log = logging.getLogger(__name__)

GATEWAY: Final = "gateway"
"""Service name of the gateway's leases: one per live call, held while its media stream is up."""

_WRONG_LAST_SEQUENCE: Final = frozenset({10071, 10164})
"""JetStream's error codes for a write whose expected last sequence is not the last."""

OnLost = Callable[[str], Awaitable[None]]
"""Called with a call id whose lease another instance took."""
MayRetake = Callable[[str], Awaitable[bool]]
"""Whether a lease that expired unnoticed (an outage, a stall) may be taken back."""
Keep = Callable[[str], Awaitable[bool]]
"""Whether a held lease is still wanted; asked before each renewal."""
KeyOf = Callable[[str], str]
"""The KV key of a held id."""


def parse_owner_key(key: str) -> tuple[str, str] | None:
    """``<service>.<call>`` → ``(service, call)``; None for a key of another shape."""
    service, dot, call_id = key.partition(".")
    return (service, call_id) if dot and service and call_id else None


class CallLeases:
    """The leases one service instance holds.

    Args:
        kv: the ``vb_call_owners`` bucket.
        service: service name, e.g. ``media``.
        instance: this instance's id (the lease value).
        ttl_s: the bucket's TTL; renewals run every third of it.
        on_lost: called (from the renewal task) for each call whose lease was lost.
        may_retake: asked before taking back a lease that expired while nobody else
            took it; None: always (the call is still being served here).
        keep: asked before renewing a lease; False releases it instead (its holder is
            gone somewhere this instance cannot see); None: always kept.
        key: the KV key of a held id; None: ``<service>.<call>``.
    """

    def __init__(
        self,
        kv: KeyValue,
        service: str,
        instance: str,
        ttl_s: float = streams.CALL_OWNERS.ttl_s,
        on_lost: OnLost | None = None,
        may_retake: MayRetake | None = None,
        keep: Keep | None = None,
        key: KeyOf | None = None,
    ) -> None:
        self._kv = kv
        self._service = service
        self._instance = instance.encode()
        self._ttl_s = ttl_s
        self._held: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._on_lost = on_lost
        self._may_retake = may_retake
        self._keep = keep
        self._key_of = key

    @property
    def kv(self) -> KeyValue:
        """The ``vb_call_owners`` bucket."""
        return self._kv

    @property
    def ttl_s(self) -> float:
        """The leases' TTL."""
        return self._ttl_s

    @property
    def held(self) -> frozenset[str]:
        """Call ids whose lease this instance holds."""
        return frozenset(self._held)

    def _key(self, call_id: str) -> str:
        if self._key_of is not None:
            return self._key_of(call_id)
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
            if self._keep is not None and not await self._keep(call_id):
                await self.release(call_id)
                continue
            try:
                renewed = await self._kv.update(self._key(call_id), self._instance, last=revision)
                if call_id not in self._held:
                    # Released while this renewal was in flight: the release's delete named
                    # the old revision and was refused, so the lease goes here.
                    await self._delete(call_id, renewed)
                    continue
                self._held[call_id] = renewed
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                # Expired (a stall longer than the TTL) or taken: take it back if nobody
                # did, else this instance must let the call go.
                retake = self._may_retake is None or await self._may_retake(call_id)
                if retake and await self.claim(call_id):
                    log.warning("call lease expired and taken back", extra={"call_id": call_id})
                    continue
                del self._held[call_id]
                lost.append(call_id)
                log.warning("call lease lost", extra={"call_id": call_id})
        return lost

    async def release(self, call_id: str) -> None:
        """Give the call's lease up (the call ended); a lease not held is left alone."""
        revision = self._held.pop(call_id, None)
        if revision is None:
            return
        await self._delete(call_id, revision)

    async def _delete(self, call_id: str, revision: int) -> None:
        """Delete the call's lease if it is still at ``revision``.

        A renewal in flight may have moved it on: that renewal deletes it when it lands.
        JetStream refuses the stale revision with a plain ``BadRequestError`` (KV's
        ``delete`` does not map it to ``KeyWrongLastSequenceError`` as ``update`` does).
        """
        try:
            await self._kv.delete(self._key(call_id), last=revision)
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            pass
        except BadRequestError as err:
            if err.err_code not in _WRONG_LAST_SEQUENCE:
                raise

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
                lost = await self.renew()
            except (NatsError, TimeoutError) as err:  # an outage: the leases may still be valid
                log.warning("call lease renewal failed", extra={"error": repr(err)})
                continue
            except Exception:  # anything else is a defect, but must not stop the renewals
                log.exception("call lease renewal failed")
                continue
            for call_id in lost:
                await self._lost(call_id)

    async def _lost(self, call_id: str) -> None:
        if self._on_lost is None:
            return
        try:
            await self._on_lost(call_id)
        except Exception:  # one call's clean-up must not stop the renewal of the others
            log.exception("letting a lost call go failed", extra={"call_id": call_id})
