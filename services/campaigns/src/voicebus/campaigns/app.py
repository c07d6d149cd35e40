"""Wiring only: settings → service → store → subscribers, responders and loops → ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from nats.js import JetStreamContext
from sqlalchemy import text
from starlette.applications import Starlette

from voicebus.campaigns import call_events, reports, rpc
from voicebus.campaigns import events as ev
from voicebus.campaigns.call_events import CallEvents
from voicebus.campaigns.clock import Clock, SystemClock
from voicebus.campaigns.dialer import Dialer, DialerConfig
from voicebus.campaigns.handlers import DNC_DURABLE, register
from voicebus.campaigns.migrations import MIGRATIONS
from voicebus.campaigns.outbox import OutboxRelay
from voicebus.campaigns.outcomes import Outcomes
from voicebus.campaigns.publisher import Publisher
from voicebus.campaigns.settings import CampaignsSettings
from voicebus.campaigns.store import Store
from voicebus.contracts import streams
from voicebus.runtime import backoff
from voicebus.runtime.consumer_lag import ConsumerLagWatch
from voicebus.runtime.errors import ConfigurationError
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)


STOP_GRACE_S = 10.0
"""How long shutdown lets a loop finish its current step before cancelling it."""


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if shutdown begins."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


def _loud(failures: int) -> bool:
    """Log the 1st, 2nd, 4th, 8th, ... failure in a row: an outage is not a log flood."""
    return failures & (failures - 1) == 0


async def _every(
    period_s: float, step: Callable[[], Awaitable[object]], name: str, stopping: asyncio.Event
) -> None:
    """Run ``step`` every ``period_s`` until shutdown; a failing step is logged, not fatal,
    and the loop backs off while failures last."""
    failures = 0
    while not stopping.is_set():
        wait = period_s
        try:
            await step()
            failures = 0
        except Exception:  # a database or bus outage must not stop the loop for good
            failures += 1
            if _loud(failures):
                log.exception("campaigns loop step failed", extra={"loop": name})
            wait = max(period_s, backoff.delay_s(failures))
        await pause(stopping, wait)


async def _supervised(
    run: Callable[[], Awaitable[object]], name: str, stopping: asyncio.Event
) -> None:
    """Run ``run`` until shutdown, starting it again (with backoff) after it fails."""
    failures = 0
    while not stopping.is_set():
        try:
            await run()
            failures = 0
        except Exception:  # e.g. NATS away while the consumer was being created
            failures += 1
            if _loud(failures):
                log.exception("campaigns consumer failed; restarting", extra={"loop": name})
        await pause(stopping, backoff.delay_s(max(failures, 1)))


class Loops:
    """The dialer, the lease reaper, the outbox relay and the progress publisher of one
    instance."""

    def __init__(
        self,
        dialer: Dialer,
        outcomes: Outcomes,
        calls: CallEvents,
        relay: OutboxRelay,
        settings: CampaignsSettings,
    ) -> None:
        self.dialer = dialer
        self.outcomes = outcomes
        self.calls = calls
        self.relay = relay
        self.settings = settings
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = asyncio.Event()

    def start(self, js: JetStreamContext) -> None:
        """Start the loops."""
        self.stopping = asyncio.Event()
        s, stop = self.settings, self.stopping
        consume = _supervised(lambda: self.calls.consume(js, stop), "call-events", stop)
        self.tasks = [
            asyncio.create_task(consume),
            asyncio.create_task(self.dialer.run(s.tick_s, stop)),
            asyncio.create_task(_every(s.reap_interval_s, self.outcomes.reap, "reaper", stop)),
            asyncio.create_task(_every(s.progress_interval_s, self.progress, "progress", stop)),
            asyncio.create_task(self.relay.run(stop)),
        ]

    async def stop(self) -> None:
        """Let each loop finish its step (a transaction is never cut in the middle), then
        stop; a loop still busy after ``STOP_GRACE_S`` is cancelled."""
        self.stopping.set()
        if self.tasks:
            _done, late = await asyncio.wait(self.tasks, timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self.tasks = []

    async def progress(self) -> None:
        """``campaign.progress`` for every running campaign.

        Every instance publishes, with the same event id for the same period, so
        the stream keeps one of them.
        """
        store = self.dialer.store
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT tenant_id, campaign_id FROM campaigns WHERE status = 'running'")
                )
            ).all()
        period = int(time.time() // self.settings.progress_interval_s)
        out = []
        for tenant_id, campaign_id in rows:
            found = await reports.progress(store, tenant_id, campaign_id)
            if found is not None:
                env = ev.Env(tenant_id, campaign_id, self.dialer.config.source)
                out.append(ev.progress(env, found, f"{campaign_id[:40]}-p{period}"))
        await self.dialer.publisher.events(out)


def build(
    settings: CampaignsSettings | None = None, clock: Clock | None = None
) -> tuple[Service, Starlette]:
    """The campaigns service and its ASGI app.

    Args:
        settings: from the environment when None.
        clock: business time; tests pass a fake one.
    """
    settings = settings or CampaignsSettings()
    clock = clock or SystemClock()
    service = Service(settings, db_schema="campaigns", migrations=MIGRATIONS)
    ConsumerLagWatch(
        [
            (streams.EVENTS.name, call_events.DURABLE),
            (streams.EVENTS.name, DNC_DURABLE),
        ]
    ).install(service)
    source = settings.connection_name
    store = Store()
    publisher = Publisher()
    outcomes = Outcomes(store, publisher, clock, source, streams.COMMANDS.duplicate_window_s)
    config = DialerConfig(
        instance_id=settings.instance_id,
        source=source,
        tenant_cap=settings.tenant_max_concurrency,
        claim_lease_s=settings.claim_lease_s,
        dial_grace_s=settings.dial_grace_s,
        max_call_s=settings.max_call_s,
    )
    dialer = Dialer(store, publisher, clock, config)
    calls = CallEvents(outcomes, source, settings.max_call_s)
    relay = OutboxRelay(store, publisher)
    loops = Loops(dialer, outcomes, calls, relay, settings)
    register(service.broker, store)
    responders = rpc.Responders(store, clock, source, settings.default_region)
    rpc.register(service.broker, responders)
    dialer.on_staged = outcomes.on_staged = responders.on_staged = relay.poke

    @service.on_connected
    async def open_store(svc: Service) -> None:
        if svc.db is None:
            raise ConfigurationError("campaigns needs VB_DATABASE_URL: it stores campaigns")
        store.bind(svc.db)
        publisher.bind(svc.js)
        calls.nc = svc.nc

    @service.on_startup
    async def start_loops(svc: Service) -> None:
        loops.start(svc.js)

    @service.on_shutdown
    async def stop_loops(_svc: Service) -> None:
        await loops.stop()

    return service, service.asgi()


def main() -> None:
    """Run the campaigns service until SIGTERM."""
    service, app = build()
    service.run(app)
