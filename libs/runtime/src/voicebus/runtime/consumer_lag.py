"""JetStream consumer lag as Prometheus gauges, polled from the server's consumer info.

A service that owns durable consumers (audit's event store, campaigns' call outcomes)
exports how far each is behind: messages not yet delivered (``pending``), delivered
and not yet acknowledged (``ack_pending``) and among those, ones delivered more than
once (``redelivered``: a storm of these means a handler keeps failing). Labels are
the stream and the durable name, both fixed by the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Final

import nats.errors
from nats.js import JetStreamContext
from prometheus_client import Gauge

from voicebus.runtime.service import Service

__all__ = ["ConsumerLagWatch"]

log = logging.getLogger(__name__)

PENDING: Final = Gauge(
    "voicebus_jetstream_consumer_pending",
    "Messages of the stream the durable consumer has not been delivered yet.",
    ["stream", "consumer"],
)
ACK_PENDING: Final = Gauge(
    "voicebus_jetstream_consumer_ack_pending",
    "Messages delivered to the durable consumer and not yet acknowledged.",
    ["stream", "consumer"],
)
REDELIVERED: Final = Gauge(
    "voicebus_jetstream_consumer_redelivered",
    "Unacknowledged messages delivered to the durable consumer more than once.",
    ["stream", "consumer"],
)


class ConsumerLagWatch:
    """Polls the consumer info of ``consumers`` every ``interval_s`` while the service runs.

    Args:
        consumers: (stream, durable name) pairs this service owns.
        interval_s: seconds between polls.
    """

    def __init__(self, consumers: Sequence[tuple[str, str]], interval_s: float = 5.0) -> None:
        self._consumers = tuple(consumers)
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def install(self, service: Service) -> None:
        """Poll from the service's start-up to its shutdown."""

        async def start(svc: Service) -> None:
            await self.poll(svc.js)
            self._task = asyncio.create_task(self._run(svc.js), name="consumer-lag")

        async def stop(_svc: Service) -> None:
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        service.on_startup(start)
        service.on_shutdown(stop)

    async def poll(self, js: JetStreamContext) -> None:
        """Read each consumer's info once and set the gauges (a missing one is skipped)."""
        for stream, durable in self._consumers:
            try:
                info = await js.consumer_info(stream, durable)
            except (nats.errors.Error, TimeoutError) as err:
                log.debug("consumer info unavailable", extra={"consumer": durable, "err": str(err)})
                continue
            PENDING.labels(stream, durable).set(info.num_pending or 0)
            ACK_PENDING.labels(stream, durable).set(info.num_ack_pending or 0)
            REDELIVERED.labels(stream, durable).set(info.num_redelivered or 0)

    async def _run(self, js: JetStreamContext) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.poll(js)
