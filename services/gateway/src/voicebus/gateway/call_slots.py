"""Tenants' concurrent-call caps, enforced exactly with slot leases in ``vb_call_slots``.

A tenant with ``max_concurrent_calls`` N has slots ``<tenant>.0`` … ``<tenant>.N-1``.
A call is admitted only if it takes a free slot with a KV create (compare-and-set),
so gateways admitting at the same moment can never hold more than N between them.
The slot is a :class:`CallLeases` lease: renewed every TTL/3 by the gateway that
admitted the call, released when the call ends, and expired by the bucket's TTL if
that gateway dies, so a crash never leaks capacity.

The call's media stream (or its status callbacks) may land on another gateway
instance, which cannot release a slot it does not hold: before each renewal the
holder therefore asks ``VB_EVENTS`` whether the call ended, or never started within
the bound given at admission (its stream token's life, plus ringing for a dial), and
lets the slot go if so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from nats.js import JetStreamContext

from voicebus.contracts import streams
from voicebus.runtime.claims import stored_event
from voicebus.runtime.leases import CallLeases
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)


class CallSlots:
    """The concurrent-call slots this gateway instance holds, one per admitted call.

    Args:
        clock: monotonic seconds (a fake in tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._js: JetStreamContext | None = None
        self._clock = clock
        self._leases: CallLeases | None = None
        self._call_of: dict[str, tuple[str, float]] = {}  # slot key → (call id, start deadline)
        self._slot_of: dict[str, str] = {}  # call id → slot key

    def attach(self, service: Service) -> None:
        """Open the slots once ``service`` is connected; release them as it shuts down."""
        service.on_connected(self._opened)
        service.on_shutdown(lambda _service: self.close())

    @property
    def leases(self) -> CallLeases:
        """The slot leases (available once connected)."""
        if self._leases is None:
            raise RuntimeError("call slots used before the service connected")
        return self._leases

    async def admit(
        self, tenant_id: str, call_id: str, cap: int | None, start_within_s: float
    ) -> bool:
        """Take a free slot of ``tenant_id`` for the call; False if all ``cap`` are taken.

        A slot is reserved here before it is created in the bucket, so two admissions
        on this instance never both believe they hold the same slot.

        Args:
            tenant_id: the call's tenant.
            call_id: the call.
            cap: the tenant's ``max_concurrent_calls``; None: admitted, no slot taken.
            start_within_s: a call with no ``call.started`` after this long never will
                (its stream token expired, its ringing is over): its slot is let go.
        """
        if cap is None:
            return True
        deadline = self._clock() + start_within_s
        for slot in range(cap):
            key = streams.slot_key(tenant_id, slot)
            if key in self._call_of:
                continue
            self._call_of[key] = (call_id, deadline)
            taken = False
            try:
                taken = await self.leases.claim(key)
            finally:
                if not taken:
                    del self._call_of[key]
            if taken:
                self._slot_of[call_id] = key
                return True
        log.warning("concurrent-call limit reached", extra={"tenant_id": tenant_id, "cap": cap,
                                                             "call_id": call_id})  # fmt: skip
        return False

    async def release(self, call_id: str) -> None:
        """Free the call's slot (the call ended); a call holding none is left alone."""
        key = self._slot_of.pop(call_id, None)
        if key is None:
            return
        self._call_of.pop(key, None)
        await self.leases.release(key)

    async def _keep(self, key: str) -> bool:
        """Whether the slot's call may still be live (renew) or is over (let go)."""
        held = self._call_of.get(key)
        if held is None:
            return False
        call_id, deadline = held
        js = self._js
        assert js is not None  # renewals run only once opened
        over = await stored_event(js, call_id, "call.ended") is not None or (
            self._clock() > deadline and await stored_event(js, call_id, "call.started") is None
        )
        if over:
            self._slot_of.pop(call_id, None)
            del self._call_of[key]
        return not over

    async def _lost(self, key: str) -> None:
        """Another call took the slot after it expired (an outage longer than the TTL)."""
        held = self._call_of.pop(key, None)
        if held is not None:
            self._slot_of.pop(held[0], None)

    async def _opened(self, service: Service) -> None:
        await self.open(service.js, service.settings.instance_id, service.settings.call_lease_ttl_s)

    async def open(self, js: JetStreamContext, instance_id: str, ttl_s: float) -> None:
        """Start holding slots as ``instance_id``, renewed every ``ttl_s / 3``."""
        self._js = js
        kv = await js.key_value(streams.CALL_SLOTS.bucket)
        self._leases = CallLeases(
            kv,
            "slots",
            instance_id,
            ttl_s=ttl_s,
            on_lost=self._lost,
            keep=self._keep,
            key=str,
        )
        self._leases.start()

    async def close(self) -> None:
        """Stop renewing and release every slot held (a clean shutdown frees them at once)."""
        if self._leases is not None:
            await self._leases.stop()
