"""The live feed behind ``GET /api/v1/events/stream``: one tenant's events off the bus.

Each stream subscribes to ``vb.evt.<tenant>.>`` on core NATS (JetStream's stored
subjects reach core subscribers too) with a bounded queue: a reader too slow for its
tenant's traffic loses its stream (it ends) rather than growing the edge's memory; the
console then reloads what it shows from the REST API.

The subscription is in place (the server has it) before :meth:`EventFeed.open` returns, so
a client that saw the stream open misses nothing published after that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Final, Protocol

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import BadSubscriptionError, ConnectionClosedError

from voicebus.contracts.subjects import evt_filter

QUEUE_MAX: Final = 1000


class FeedStream(Protocol):
    """One open stream: envelopes (JSON bytes) as they come; iteration ends on overflow."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterate the envelopes."""
        ...

    async def close(self) -> None:
        """Stop receiving (idempotent)."""
        ...


class EventFeed(Protocol):
    """Live events of one tenant (a fake in component tests)."""

    async def open(self, tenant_id: str) -> FeedStream:
        """A stream of the tenant's events published from now on."""
        ...


class NatsStream:
    """:class:`FeedStream` over one core NATS subscription and a bounded queue."""

    def __init__(self, queue_max: int) -> None:
        # None on the queue: it overflowed, and the stream ends there.
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(queue_max + 1)
        self._queue_max = queue_max
        self.subscription: Subscription | None = None

    async def on_message(self, msg: Msg) -> None:
        """The subscription's callback: queue the event, or mark the overflow."""
        if self._queue.qsize() >= self._queue_max:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
            return
        self._queue.put_nowait(msg.data)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            data = await self._queue.get()
            if data is None:
                await self.close()
                return
            yield data

    async def close(self) -> None:
        """Unsubscribe."""
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            # The connection may be closing already (the edge is stopping).
            with contextlib.suppress(ConnectionClosedError, BadSubscriptionError):
                await subscription.unsubscribe()


class NatsEventFeed:
    """:class:`EventFeed` over the edge's NATS connection.

    Args:
        connection: the raw NATS client (usable once the service started).
        queue_max: events a stream may hold before its reader is dropped.
    """

    def __init__(self, connection: Callable[[], Client], queue_max: int = QUEUE_MAX) -> None:
        self._connection = connection
        self._queue_max = queue_max

    async def open(self, tenant_id: str) -> NatsStream:
        """Subscribe to ``vb.evt.<tenant_id>.>``; returns once the server has the subscription."""
        nc = self._connection()
        stream = NatsStream(self._queue_max)
        stream.subscription = await nc.subscribe(evt_filter(tenant_id), cb=stream.on_message)
        await nc.flush()
        return stream
