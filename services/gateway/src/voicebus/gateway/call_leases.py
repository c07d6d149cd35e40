"""The calls whose media stream this gateway holds, each with a lease in ``vb_call_owners``.

The lease (``gateway.<call>``) says the call is live. If this gateway dies it
expires, and the orchestrator owning the call ends it as ``gateway_lost``. If
instead this gateway was only cut off from NATS (or stalled) for longer than the
lease TTL, the platform may have ended the call meanwhile: a lease found expired
is taken back only if no ``call.ended`` was stored, otherwise the caller is hung
up too, so no call goes on with nobody serving it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from voicebus.runtime.claims import InstanceLeases, stored_event
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)

Close = Callable[[], Awaitable[None]]
"""Ends one call's media stream (its session publishes the call's end)."""


class LiveCalls:
    """Leases of the calls this gateway instance carries, and how to end each one.

    Args:
        service: the gateway service (leases open once it is connected).
    """

    def __init__(self, service: Service) -> None:
        self._service = service
        self._close: dict[str, Close] = {}
        self._leases = InstanceLeases(service, on_lost=self._lost, may_retake=self._still_live)

    async def hold(self, call_id: str, close: Close) -> None:
        """Take the call's lease as its media stream starts (before ``call.started``)."""
        self._close[call_id] = close
        if not await self._leases.leases.claim(call_id):
            log.warning("call lease held by another gateway", extra={"call_id": call_id})

    async def let_go(self, call_id: str) -> None:
        """Release the call's lease once its ``call.ended`` is stored."""
        self._close.pop(call_id, None)
        await self._leases.leases.release(call_id)

    async def _still_live(self, call_id: str) -> bool:
        return await stored_event(self._service.js, call_id, "call.ended") is None

    async def _lost(self, call_id: str) -> None:
        close = self._close.pop(call_id, None)
        if close is not None:
            log.warning("call ended while this gateway was away", extra={"call_id": call_id})
            await close()
