"""The live feed behind ``GET /api/v1/events/stream``: one tenant's events off the bus.

Each stream subscribes to ``vb.evt.<tenant>.>`` on core NATS (JetStream's stored
subjects reach core subscribers too) with a bounded queue: a reader too slow for its
tenant's traffic loses its stream (it ends with an ``overflow`` notice) rather than
growing the edge's memory; the console then reloads what it shows from the REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Final, Protocol

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import BadSubscriptionError, ConnectionClosedError

from voicebus.contracts.subjects import evt_filter

QUEUE_MAX: Final = 1000


class EventFeed(Protocol):
    """Live events of one tenant (a fake in component tests)."""

    def stream(self, tenant_id: str) -> AsyncIterator[bytes]:
        """The tenant's events as they are published (JSON envelopes); ends on overflow."""
        ...


class NatsEventFeed:
    """:class:`EventFeed` over the edge's NATS connection.

    Args:
        connection: the raw NATS client (usable once the service started).
        queue_max: events a stream may hold before its reader is dropped.
    """

    def __init__(self, connection: Callable[[], Client], queue_max: int = QUEUE_MAX) -> None:
        self._connection = connection
        self._queue_max = queue_max

    async def stream(self, tenant_id: str) -> AsyncIterator[bytes]:
        """Yield each event published on ``vb.evt.<tenant_id>.>`` until overflow."""
        # None on the queue: it overflowed, and the stream ends there.
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self._queue_max + 1)

        async def on_message(msg: Msg) -> None:
            if queue.qsize() >= self._queue_max:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
                return
            queue.put_nowait(msg.data)

        subscription = await self._connection().subscribe(evt_filter(tenant_id), cb=on_message)
        try:
            while True:
                data = await queue.get()
                if data is None:
                    return
                yield data
        finally:
            # The connection may be closing already (the edge is stopping).
            with contextlib.suppress(ConnectionClosedError, BadSubscriptionError):
                await subscription.unsubscribe()
