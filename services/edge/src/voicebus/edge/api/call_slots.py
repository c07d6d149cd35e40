"""A tenant's concurrent-call slots as the edge sees them: a hint for ``POST /calls``.

The gateways hold one key ``<tenant>.<n>`` in ``vb_call_slots`` per live call of a
tenant with ``max_concurrent_calls`` (see the gateway's ``call_slots``). When every
slot below the cap is visibly taken, ``POST /calls`` answers 429 at once instead of
queueing a call the gateway would refuse. Only a hint: a slot may free or be taken
right after this look, and the gateway's compare-and-set admission stays the exact
gate. If NATS cannot be asked, the call is queued and the gateway decides.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from nats.errors import Error as NatsError
from nats.js.kv import KeyValue

from voicebus.contracts.streams import CALL_SLOTS, slot_filter, slot_key
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)

_READ_S: Final = 2.0
"""A look at the slots that takes longer is given up: the call is queued, the gateway decides."""


class CallSlotsView:
    """Reads the ``vb_call_slots`` bucket (opened once the edge is connected)."""

    def __init__(self) -> None:
        self._kv: KeyValue | None = None

    async def open(self, service: Service) -> None:
        """Connected hook: use the service's bucket."""
        self._kv = await service.js.key_value(CALL_SLOTS.bucket)

    async def all_taken(self, tenant_id: str, cap: int) -> bool:
        """Whether every slot of ``tenant_id`` below ``cap`` is held now (False if unknown)."""
        if self._kv is None:
            return False
        wanted = {slot_key(tenant_id, n) for n in range(cap)}
        try:
            held = await self._held(tenant_id)
        except (NatsError, TimeoutError) as err:
            log.warning("call slots unreadable", extra={"error": repr(err)})
            return False
        return wanted <= held

    async def _held(self, tenant_id: str) -> set[str]:
        """The tenant's slot keys now (one ordered consumer over its keys only: nats-py's
        ``keys(filters=...)`` would read the whole bucket)."""
        assert self._kv is not None
        watcher = await self._kv.watch(slot_filter(tenant_id), ignore_deletes=True, meta_only=True)
        held: set[str] = set()
        try:
            async with asyncio.timeout(_READ_S):
                async for entry in watcher:
                    if entry is None:  # every current key was delivered
                        break
                    held.add(entry.key)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]  # unannotated in nats-py
        return held
