"""How media, orchestrator and recorder each claim a call (ARCHITECTURE.md, step 3).

``call.started`` reaches one instance of the service through a shared durable
consumer (``<service>-call-claims``); that instance takes the call's lease in
``vb_call_owners`` and starts working on it. ``call.ended`` reaches every
instance over core NATS; the owner stops and releases the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge

from voicebus.contracts import streams, subjects
from voicebus.contracts.events import CallEnded, CallStarted
from voicebus.runtime.consumers import event_subscriber
from voicebus.runtime.leases import CallLeases
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)

CLAIMS = Counter(
    "voicebus_call_claims", "Call claims, by service and result.", ["service", "result"]
)
OWNED = Gauge("voicebus_calls_owned", "Live calls this instance owns.", ["service"])

OnStart = Callable[[CallStarted], Awaitable[None]]
OnEnd = Callable[[CallEnded], Awaitable[None]]


async def _nothing(_event: CallStarted | CallEnded) -> None:
    return None


class CallClaims:
    """Claims calls for one service instance and hands them to its domain code.

    Args:
        service: the service (its name is the lease prefix and durable prefix).
        on_start: called once this instance owns a call.
        on_end: called when a call this instance owns ends.
    """

    def __init__(
        self, service: Service, on_start: OnStart = _nothing, on_end: OnEnd = _nothing
    ) -> None:
        self._service = service
        self._on_start = on_start
        self._on_end = on_end
        self._leases: CallLeases | None = None
        name = service.name
        event_subscriber(
            service.broker,
            durable=f"{name}-call-claims",
            event_type="call.started",
            description=f"One {name} instance claims each new call.",
        )(self._claim)
        service.broker.subscriber(
            subjects.evt_filter(event_type="call.ended"),
            # A core subscriber of a JetStream subject sees the publisher's reply
            # inbox; answering it would race JetStream's PubAck to the publisher.
            no_reply=True,
            description=f"Every {name} instance hears call ends; the owner lets go.",
        )(self._end)
        service.on_connected(self._open)
        service.on_shutdown(self._close)

    @property
    def leases(self) -> CallLeases:
        """This instance's leases (available once connected)."""
        if self._leases is None:
            raise RuntimeError("CallClaims used before the service connected")
        return self._leases

    async def _open(self, service: Service) -> None:
        kv = await service.js.key_value(streams.CALL_OWNERS.bucket)
        self._leases = CallLeases(kv, service.name, service.settings.instance_id)
        self._leases.start()

    async def _close(self, _service: Service) -> None:
        if self._leases is not None:
            await self._leases.stop()

    async def _claim(self, event: CallStarted) -> None:
        if event.call_id in self.leases.held:
            return  # a redelivered call.started: this instance already runs the call
        won = await self.leases.claim(event.call_id)
        CLAIMS.labels(self._service.name, "won" if won else "taken").inc()
        if not won:
            return
        OWNED.labels(self._service.name).set(len(self.leases.held))
        log.info("call claimed", extra={"call_id": event.call_id})
        await self._on_start(event)

    async def _end(self, event: CallEnded) -> None:
        if event.call_id not in self.leases.held:
            return
        await self._on_end(event)
        await self.leases.release(event.call_id)
        OWNED.labels(self._service.name).set(len(self.leases.held))
        log.info("call released", extra={"call_id": event.call_id})
