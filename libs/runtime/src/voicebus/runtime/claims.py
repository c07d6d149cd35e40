"""How media, orchestrator and recorder each claim a call (ARCHITECTURE.md, step 3).

``call.started`` reaches one instance of the service through a shared durable
consumer (``<service>-call-claims``); that instance takes the call's lease in
``vb_call_owners`` and starts working on it. ``call.ended`` reaches every
instance over core NATS; the owner stops and releases the lease.

Takeover: the gateway holds a ``gateway.<call>`` lease while a call's media
stream is up, so those keys are the live calls. Every instance of a service
that opts in scans the bucket every half TTL; a live call with no lease of this
service in two scans in a row (its owner died and the lease expired; one scan
alone could be the moment between ``call.started`` and the normal claim) is
claimed with the ``call.started`` read back from ``VB_EVENTS``, exactly as if it
had just started. The domain code finds what it needs to continue (the
orchestrator's session in ``vb_sessions``) and subscribes from now on.

Expiry is found by scanning rather than by watching the bucket: a bucket's TTL
removes entries without leaving a delete marker, so a watcher never sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NoKeysError, NotFoundError
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from voicebus.contracts import streams, subjects
from voicebus.contracts.events import CallEnded, CallEvent, CallStarted, parse_event
from voicebus.runtime.consumers import event_subscriber
from voicebus.runtime.leases import GATEWAY, CallLeases, MayRetake, OnLost, parse_owner_key
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)

CLAIMS = Counter(
    "voicebus_call_claims", "Call claims, by service and result.", ["service", "result"]
)
OWNED = Gauge("voicebus_calls_owned", "Live calls this instance owns.", ["service"])

OnStart = Callable[[CallStarted], Awaitable[None]]
OnEnd = Callable[[CallEnded], Awaitable[None]]
OnGatewayLost = Callable[[CallStarted], Awaitable[None]]


async def _nothing(_event: CallStarted | CallEnded) -> None:
    return None


class InstanceLeases:
    """The :class:`CallLeases` of one service instance, opened once NATS is up.

    Args:
        service: the service; its name is the lease prefix.
        on_lost: called for a call whose lease another instance took.
        may_retake: whether a lease that expired unnoticed may be taken back.
    """

    def __init__(
        self,
        service: Service,
        on_lost: OnLost | None = None,
        may_retake: MayRetake | None = None,
    ) -> None:
        self._on_lost = on_lost
        self._may_retake = may_retake
        self._leases: CallLeases | None = None
        service.on_connected(self._open)
        service.on_shutdown(self._close)

    @property
    def leases(self) -> CallLeases:
        """This instance's leases (available once connected)."""
        if self._leases is None:
            raise RuntimeError("leases used before the service connected")
        return self._leases

    async def _open(self, service: Service) -> None:
        kv = await service.js.key_value(streams.CALL_OWNERS.bucket)
        self._leases = CallLeases(
            kv,
            service.name,
            service.settings.instance_id,
            ttl_s=service.settings.call_lease_ttl_s,
            on_lost=self._on_lost,
            may_retake=self._may_retake,
        )
        self._leases.start()

    async def _close(self, _service: Service) -> None:
        if self._leases is not None:
            await self._leases.stop()


class CallClaims:
    """Claims calls for one service instance and hands them to its domain code.

    Args:
        service: the service (its name is the lease prefix and durable prefix).
        on_start: called once this instance owns a call (also after a takeover).
        on_end: called when a call this instance owns ends.
        on_lost: called when another instance took a call this one served: stop
            serving it (the lease is already gone).
        take_over: scan for live calls whose owner of this service is gone and claim them.
        on_gateway_lost: called for a call this instance owns whose gateway lease
            expired (the gateway holding its media stream died); None: not this
            service's concern.
        on_unowned_end: called when a call this instance does not own ends (every
            instance hears every end): e.g. to finish what a dead owner left.
    """

    def __init__(
        self,
        service: Service,
        on_start: OnStart = _nothing,
        on_end: OnEnd = _nothing,
        on_lost: OnLost | None = None,
        *,
        take_over: bool = False,
        on_gateway_lost: OnGatewayLost | None = None,
        on_unowned_end: OnEnd | None = None,
    ) -> None:
        self._service = service
        self._on_start = on_start
        self._on_end = on_end
        self._on_lost = on_lost
        self._take_over = take_over
        self._on_gateway_lost = on_gateway_lost
        self._on_unowned_end = on_unowned_end
        self._instance = InstanceLeases(service, on_lost=self._lost)
        self._unserved: set[str] = set()
        self._gateway_gone: set[str] = set()
        self._scanner: asyncio.Task[None] | None = None
        name = service.name
        event_subscriber(
            service.broker,
            durable=f"{name}-call-claims",
            event_type="call.started",
            description=f"One {name} instance claims each new call.",
        )(self._started)
        service.broker.subscriber(
            subjects.evt_filter(event_type="call.ended"),
            # A core subscriber of a JetStream subject sees the publisher's reply
            # inbox; answering it would race JetStream's PubAck to the publisher.
            no_reply=True,
            description=f"Every {name} instance hears call ends; the owner lets go.",
        )(self._end)
        if take_over or on_gateway_lost is not None:
            service.on_startup(self._start_scanner)
            service.on_shutdown(self._stop_scanner)

    @property
    def leases(self) -> CallLeases:
        """This instance's leases (available once connected)."""
        return self._instance.leases

    async def take_over(self, call_id: str) -> bool:
        """Claim a live call whose owner is gone, as if it had just started.

        Returns:
            True if this instance now serves the call; False if another instance
            holds it, or the call has no ``call.started`` or has already ended.
        """
        if call_id in self.leases.held:
            return True
        event = await self._started_event(call_id)
        if event is None:
            return False
        return await self._claim(event, result="takeover")

    async def _started(self, event: CallStarted) -> None:
        await self._claim(event)

    async def _claim(self, event: CallStarted, result: str = "won") -> bool:
        if event.call_id in self.leases.held:
            return True  # a redelivered call.started: this instance already runs the call
        won = await self.leases.claim(event.call_id)
        CLAIMS.labels(self._service.name, result if won else "taken").inc()
        if not won:
            return False
        log.info("call claimed", extra={"call_id": event.call_id, "claim": result})
        try:
            await self._on_start(event)
        except BaseException:
            # Let go, so that a redelivery or the next scan can claim the call again
            # (a held lease with nothing behind it would leave the call unserved).
            await self.leases.release(event.call_id)
            raise
        finally:
            OWNED.labels(self._service.name).set(len(self.leases.held))
        return True

    async def _end(self, event: CallEnded) -> None:
        if event.call_id not in self.leases.held:
            if self._on_unowned_end is not None:
                await self._on_unowned_end(event)
            return
        await self._on_end(event)
        await self.leases.release(event.call_id)
        OWNED.labels(self._service.name).set(len(self.leases.held))
        log.info("call released", extra={"call_id": event.call_id})

    async def _lost(self, call_id: str) -> None:
        OWNED.labels(self._service.name).set(len(self.leases.held))
        if self._on_lost is not None:
            await self._on_lost(call_id)

    # -- finding calls nobody serves ------------------------------------------------

    async def _start_scanner(self, _service: Service) -> None:
        self._scanner = asyncio.create_task(self._scan_forever(), name="call-owner-scan")

    async def _stop_scanner(self, _service: Service) -> None:
        task, self._scanner = self._scanner, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _scan_forever(self) -> None:
        while True:
            await asyncio.sleep(self.leases.ttl_s / 2)
            try:
                await self.scan()
            except (NatsError, TimeoutError) as err:  # an outage: the next scan tries again
                log.warning("call owner scan failed", extra={"error": repr(err)})
            except Exception:  # anything else is a defect, but must not stop the scans
                log.exception("call owner scan failed")

    async def scan(self) -> None:
        """One pass: claim live calls nobody of this service serves; report lost gateways."""
        try:
            keys = await self.leases.kv.keys()
        except NoKeysError:
            keys = []
        live: set[str] = set()
        served: set[str] = set()
        for key in keys:
            parsed = parse_owner_key(key)
            if parsed is None:
                continue
            service, call_id = parsed
            if service == GATEWAY:
                live.add(call_id)
            elif service == self._service.name:
                served.add(call_id)
        held = self.leases.held
        if self._take_over:
            unserved = live - served - held
            due, self._unserved = unserved & self._unserved, unserved
            for call_id in sorted(due):
                if await self.take_over(call_id):
                    log.warning("call taken over", extra={"call_id": call_id})
        if self._on_gateway_lost is not None:
            gone = set(held) - live
            due, self._gateway_gone = gone & self._gateway_gone, gone
            for call_id in sorted(due):
                ended = await self._stored(call_id, "call.ended")
                if isinstance(ended, CallEnded):  # its end went by unheard (a NATS outage)
                    await self._end(ended)
                    continue
                started = await self._stored(call_id, "call.started")
                if isinstance(started, CallStarted):
                    log.warning("gateway of a live call lost", extra={"call_id": call_id})
                    await self._on_gateway_lost(started)

    async def _started_event(self, call_id: str) -> CallStarted | None:
        """The call's ``call.started`` from ``VB_EVENTS``; None if absent or the call ended."""
        if await self._stored(call_id, "call.ended") is not None:
            return None
        started = await self._stored(call_id, "call.started")
        return started if isinstance(started, CallStarted) else None

    async def _stored(self, call_id: str, event_type: str) -> CallEvent | None:
        return await stored_event(self._service.js, call_id, event_type)


async def stored_event(js: JetStreamContext, call_id: str, event_type: str) -> CallEvent | None:
    """The call's last event of ``event_type`` (unversioned) in ``VB_EVENTS``, or None."""
    subject = subjects.evt_filter(None, call_id, event_type)
    try:
        msg = await js.get_last_msg(streams.EVENTS.name, subject)
    except NotFoundError:
        return None
    try:
        return parse_event(msg.data or b"")
    except ValidationError:
        log.warning("unreadable stored event", extra={"call_id": call_id})
        return None
