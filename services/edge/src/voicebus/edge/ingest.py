"""The edge's durable consumer of ``VB_EVENTS``: the webhook outbox and usage metering.

Why here and not a query to audit: the edge owns both results (subscriptions, their
delivery log, the usage it serves), so one consumer writes them in one transaction
per batch, and neither needs another service to be up when a tenant asks.

One batch at a time, in stream order: the consumer's ``max_ack_pending`` is one
batch, so edge instances sharing it take turns, and a batch's deliveries and usage
items are committed together before its messages are acked. A redelivery after a
crash between commit and ack writes nothing twice: a delivery is unique per
subscription and event, a usage item per event and metric. While the database is
unreachable the batch in hand is retried with backoff, held in progress (never
redelivered meanwhile); a message that is not an event of its subject, or a metered
event that breaks its contract, becomes a dead letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.contracts import streams, subjects
from voicebus.contracts.deadletters import DeadLetterReason
from voicebus.contracts.errors import ContractError
from voicebus.contracts.events import parse_event
from voicebus.edge.usage import store as usage_store
from voicebus.edge.usage.metering import METERED_TYPES, UsageItem, items_of
from voicebus.edge.webhooks.routing import NotAnEventError, by_tenant, read_head, route
from voicebus.edge.webhooks.store import Outgoing, Webhook, WebhookStore
from voicebus.runtime import backoff
from voicebus.runtime.consumers import ensure_consumer
from voicebus.runtime.deadletters import dead_letter_msg
from voicebus.runtime.failures import Failure, classify, describe
from voicebus.runtime.held import Held
from voicebus.runtime.puller import Puller

log = logging.getLogger(__name__)

SERVICE: Final = "edge"
DURABLE: Final = "edge-event-ingest"
UNKNOWN_TRIES: Final = 3
"""A batch failing for no known reason is tried this often before it is split."""


def consumer_config(batch_size: int, ack_wait_s: float = 30.0) -> ConsumerConfig:
    """Every event the stream holds when the consumer is first made (usage counts the
    retained history), one batch outstanding at a time, no delivery limit."""
    return ConsumerConfig(
        durable_name=DURABLE,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=-1,
        max_ack_pending=batch_size,
        filter_subject=subjects.evt_filter(),
    )


class Routes:
    """The enabled subscriptions by tenant, reloaded after ``ttl_s`` or when invalidated
    (this instance's API changed one; other instances' changes are seen within ``ttl_s``).

    Args:
        store: the subscriptions.
        ttl_s: how long a loaded table is used.
    """

    def __init__(self, store: WebhookStore, ttl_s: float) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._table: dict[str, list[Webhook]] | None = None
        self._loaded_at = 0.0

    def invalidate(self) -> None:
        """Reload before the next batch."""
        self._table = None

    async def current(self) -> dict[str, list[Webhook]]:
        """The routing table."""
        now = asyncio.get_running_loop().time()
        if self._table is None or now - self._loaded_at > self._ttl_s:
            self._table = by_tenant(await self._store.enabled())
            self._loaded_at = now
        return self._table


@dataclass
class _Plan:
    outgoing: list[Outgoing] = field(default_factory=list)
    usage: list[UsageItem] = field(default_factory=list)
    rejected: list[tuple[Msg, str]] = field(default_factory=list)


class EventIngest:
    """Pulls events in batches; writes each batch's deliveries and usage in one transaction.

    Args:
        engine: the edge's database, once open.
        routes: the subscriptions.
        budget: attempts a new delivery gets.
        on_enqueued: called after a batch put deliveries in the outbox (wakes the
            dispatcher).
        batch_size: most events per pull and per transaction.
    """

    def __init__(
        self,
        engine: Callable[[], AsyncEngine],
        routes: Routes,
        *,
        budget: int,
        on_enqueued: Callable[[], None],
        batch_size: int = 256,
        pull_timeout_s: float = 1.0,
    ) -> None:
        self._engine = engine
        self._routes = routes
        self._budget = budget
        self._on_enqueued = on_enqueued
        self._batch_size = batch_size
        self._timeout = pull_timeout_s
        self._js: JetStreamContext | None = None
        self._puller: Puller | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        """Create (or update) the durable consumer and start pulling."""
        await ensure_consumer(js, streams.EVENTS.name, consumer_config(self._batch_size))
        self._js = js
        self._puller = Puller(nc, streams.EVENTS.name, DURABLE)
        await self._puller.start()
        self._task = asyncio.create_task(self._run(self._puller), name="edge-event-ingest")

    async def stop(self) -> None:
        """Stop pulling; the batch in hand is handed back unless committed."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._puller is not None:
            await self._puller.stop()
            self._puller = None

    async def _run(self, puller: Puller) -> None:
        failures = 0
        while True:
            try:
                msgs = await puller.fetch(self._batch_size, timeout=self._timeout)
            except NatsError:
                failures += 1
                log.warning("event pull failed; retrying", exc_info=True)
                await asyncio.sleep(backoff.delay_s(failures))
                continue
            failures = 0
            if msgs:
                held = Held(msgs)
                try:
                    await self.handle(msgs, held)
                finally:
                    await held.release()

    async def handle(self, msgs: list[Msg], held: Held) -> None:
        """Commit one batch, then ack it. Outages are waited out as long as they last; a
        batch failing otherwise is committed message by message, and a message that still
        fails on its own becomes a dead letter (the others go on)."""
        if await self._commit(msgs):
            await held.ack(msgs)
            return
        for msg in msgs:
            if not await self._commit([msg]):
                await self._set_aside(msg, DeadLetterReason.STORAGE_REJECTED, "not storable")
            await held.ack([msg])

    async def _commit(self, msgs: list[Msg]) -> bool:
        """Store ``msgs``' deliveries and usage; False when they fail for a reason other
        than an outage (after a few tries)."""
        attempt = unknown = 0
        while True:
            try:
                plan = self._plan(msgs, await self._routes.current())
                async with self._engine().begin() as conn:
                    await WebhookStore.enqueue(conn, plan.outgoing, self._budget)
                    await usage_store.record(conn, plan.usage)
                break
            except Exception as exc:  # classified: an outage waits, anything else is counted
                kind = classify(exc)
                if kind is Failure.DATA or (
                    kind is Failure.UNKNOWN and (unknown := unknown + 1) >= UNKNOWN_TRIES
                ):
                    log.warning("event batch refused", extra={"error": describe(exc)})
                    return False
                attempt += 1
                self._log_retry(attempt, exc)
            await asyncio.sleep(backoff.delay_s(attempt))
        for msg, why in plan.rejected:
            await self._set_aside(msg, DeadLetterReason.INVALID_MESSAGE, why)
        if plan.outgoing:
            self._on_enqueued()
        return True

    def _plan(self, msgs: list[Msg], hooks: dict[str, list[Webhook]]) -> _Plan:
        plan = _Plan()
        for msg in msgs:
            try:
                head = read_head(msg.subject, msg.data)
                if head.name in METERED_TYPES:
                    plan.usage.extend(items_of(parse_event(msg.data)))
            except (NotAnEventError, ValidationError, ContractError, UnicodeDecodeError) as err:
                why = str(err) if isinstance(err, NotAnEventError) else describe(err)
                plan.rejected.append((msg, why))
                continue
            plan.outgoing.extend(route(head, msg.metadata.sequence.stream, msg.data, hooks))
        return plan

    @staticmethod
    def _log_retry(attempt: int, exc: BaseException) -> None:
        if attempt & (attempt - 1) == 0:  # the 1st, 2nd, 4th, 8th, ... failure
            log.warning(
                "event batch not stored; retrying",
                extra={"attempt": attempt, "error": type(exc).__name__},
            )

    async def _set_aside(self, msg: Msg, reason: DeadLetterReason, why: str) -> None:
        assert self._js is not None
        try:
            await dead_letter_msg(self._js, msg, service=SERVICE, reason=reason, detail=why)
        except (NatsError, TimeoutError):
            log.warning("dead letter not stored; the event is skipped", extra={"detail": why})
