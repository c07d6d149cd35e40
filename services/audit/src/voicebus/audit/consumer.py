"""Audit's durable consumer of ``VB_EVENTS``: pulled in batches, stored a batch per transaction.

One event per transaction caps audit at a few hundred events per second; a batch
of up to ``batch_size`` events is a few round trips. Pulled with
:class:`~voicebus.audit.puller.Puller`, not FastStream: FastStream 0.7 with
nats-py 2.16 mishandles pulls of more than one message (see
``voicebus.runtime.consumers``), and nats-py's own ``fetch`` costs a task per message.

Exactly once: every message is acked only after the transaction that stored it
committed, and the event id is the primary key, so a redelivery after a crash
between commit and ack stores nothing twice.

Nothing is lost, and one bad event stops nothing:

- a message that is not a valid event (JSON, a field, a control character) is
  stored in ``VB_DEAD_LETTERS`` (reason ``invalid_message``) and acked;
- a batch the database refuses for its *data* (a ``jsonb`` that cannot hold
  ``\\u0000``, a value too long) is split in halves, each stored on its own, down
  to the one event at fault, which becomes a dead letter (``storage_rejected``);
- while the database is *unreachable*, the batch in hand is retried with
  exponential backoff and jitter, as long as it takes, and no further batch is
  pulled: the messages are kept (``in_progress`` before their ack wait runs out)
  instead of being redelivered, and the consumer has no delivery limit, so a
  crash meanwhile only hands them to another instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from voicebus.audit.chain import Incoming
from voicebus.audit.puller import Puller
from voicebus.audit.store import ChainConflictError, EventStore
from voicebus.contracts import streams, subjects
from voicebus.contracts.errors import ContractError
from voicebus.contracts.events import parse_event
from voicebus.runtime import backoff
from voicebus.runtime.deadletters import dead_letter_msg
from voicebus.runtime.failures import Failure, classify, dead_letter_reason, describe
from voicebus.runtime.held import Held
from voicebus.runtime.telemetry import child_spans

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

SERVICE: Final = "audit"
DURABLE: Final = "audit-call-events"
EVENTS_STORED: Final = Counter(
    "voicebus_audit_events_stored", "Events persisted, by whether they were new.", ["new"]
)
EVENTS_REJECTED: Final = Counter(
    "voicebus_audit_events_rejected",
    "Messages on VB_EVENTS set aside as dead letters (invalid, or refused by the database).",
)
STORE_RETRIES: Final = Counter(
    "voicebus_audit_store_retries", "Batches retried after a failure, by kind.", ["kind"]
)
BATCH: Final = Histogram(
    "voicebus_audit_batch_events",
    "Events stored per transaction.",
    buckets=(1, 2, 5, 10, 50, 100, 250, 500, 1000, 2000, 3000),
)
UNKNOWN_RETRIES: Final = 3
"""A batch failing for no known reason is retried this often before it is split."""


def stream_sequence(reply: str) -> int | None:
    """The stream sequence in a JetStream ack subject, without building nats-py's metadata
    (a datetime and three objects per message, measurable at thousands per second).

    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…`` (9 tokens) or, with a
    domain and account hash, ``$JS.ACK.<domain>.<hash>.<stream>.…`` (12 or more).
    """
    tokens = reply.split(".")
    index = 5 if len(tokens) == 9 else 7 if len(tokens) >= 11 else None
    if index is None or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    try:
        return int(tokens[index])
    except ValueError:
        return None


def consumer_config(ack_wait_s: float = 30.0) -> ConsumerConfig:
    """The durable consumer: every event from the stream's start, explicit acks, and no
    delivery limit (an event is stored or set aside, never dropped)."""
    return ConsumerConfig(
        durable_name=DURABLE,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=-1,
        max_ack_pending=20_000,
        filter_subject=subjects.evt_filter(),
    )


class _Stopping(Exception):  # noqa: N818 - a signal, not an error
    """The consumer stops while a batch waits for the database."""


class EventConsumer:
    """Pulls events in batches and stores each batch in one transaction.

    Args:
        store: where events go.
        batch_size: most events per pull and per transaction.
        pull_timeout_s: how long one pull waits for the first message.
    """

    def __init__(
        self, store: EventStore, *, batch_size: int = 3000, pull_timeout_s: float = 1.0
    ) -> None:
        self._store = store
        self._batch_size = batch_size
        self._timeout = pull_timeout_s
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._puller: Puller | None = None
        self._js: JetStreamContext | None = None
        self._stopping = asyncio.Event()

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        """Create the durable consumer (or update one an older version made) and start pulling."""
        await js.add_consumer(streams.EVENTS.name, consumer_config())
        self._js = js
        self._stopping = asyncio.Event()
        puller = Puller(nc, streams.EVENTS.name, DURABLE)
        await puller.start()
        self._puller = puller
        self._task = asyncio.create_task(self._run(puller), name="audit-consumer")

    async def stop(self) -> None:
        """Stop pulling; a batch being stored finishes first (its acks included), unless it
        waits for an unreachable database: then it is handed back to the stream."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._inflight is not None:
            await self._inflight
        if self._puller is not None:
            await self._puller.stop()

    async def _run(self, puller: Puller) -> None:
        attempt = 0
        while True:
            try:
                msgs = await puller.fetch(self._batch_size, timeout=self._timeout)
            except NatsError:
                attempt += 1
                log.warning("event pull failed; retrying", exc_info=True)
                await asyncio.sleep(backoff.delay_s(attempt))
                continue
            attempt = 0
            if not msgs:
                continue
            held = Held(msgs)
            # The next batch is pulled while this one is stored; batches are stored one
            # after another, in order (a later event's values must win). Shielded: a
            # stop waits for the batch's commit and acks; the batch pulled meanwhile is
            # handed back.
            if self._inflight is not None:
                try:
                    await asyncio.shield(self._inflight)
                except asyncio.CancelledError:
                    await held.release()
                    raise
            self._inflight = asyncio.create_task(self.handle(msgs, held))

    async def handle(self, msgs: list[Msg], held: Held | None = None) -> None:
        """Store one pulled batch and settle every message of it."""
        held = held or Held(msgs)
        try:
            items: list[tuple[Msg, Incoming]] = []
            for msg in msgs:
                try:
                    event = parse_event(msg.data)
                    items.append((msg, Incoming.of(event, stream_sequence(msg.reply), msg.data)))
                except (ValidationError, ContractError, UnicodeDecodeError) as err:
                    await self._set_aside(msg, err, held)
            await self._store_all(items, held)
        except _Stopping:
            log.warning("audit stopping while the database is unreachable; events handed back")
        finally:
            await held.release()

    async def _store_all(self, items: list[tuple[Msg, Incoming]], held: Held) -> None:
        """Store ``items`` (retrying outages, splitting around data the database refuses)."""
        if not items:
            return
        attempt = unknown = 0
        while True:
            try:
                # One span per traced event, child of its publisher's: the call's trace
                # shows when its event reached the database.
                with child_spans(
                    tracer,
                    "audit.store",
                    (msg.headers for msg, _ in items),
                    {"db.system.name": "postgresql", "voicebus.batch_size": len(items)},
                ):
                    new = await self._store.append_many([item for _, item in items])
            except Exception as exc:  # classified below; nothing is swallowed
                kind = Failure.TRANSIENT if isinstance(exc, ChainConflictError) else classify(exc)
                if kind is Failure.TRANSIENT or (
                    kind is Failure.UNKNOWN and (unknown := unknown + 1) < UNKNOWN_RETRIES
                ):
                    attempt += 1
                    STORE_RETRIES.labels(kind.value).inc()
                    self._log_retry(kind, attempt, exc)
                    await self._pause(attempt)
                    continue
                if len(items) == 1:
                    await self._set_aside(items[0][0], exc, held)
                    return
                half = len(items) // 2
                await self._store_all(items[:half], held)
                await self._store_all(items[half:], held)
                return
            BATCH.observe(len(items))
            EVENTS_STORED.labels(new="true").inc(new)
            EVENTS_STORED.labels(new="false").inc(len(items) - new)
            await held.ack([msg for msg, _ in items])
            return

    @staticmethod
    def _log_retry(kind: Failure, attempt: int, exc: Exception) -> None:
        if attempt & (attempt - 1):  # only the 1st, 2nd, 4th, 8th, ... retry of a batch
            return
        fields = {"attempt": attempt, "error": type(exc).__name__}
        if kind is Failure.TRANSIENT:
            log.warning("storing events failed on an outage; retrying", extra=fields)
        else:
            log.error("storing events failed; retrying", extra=fields, exc_info=exc)

    async def _pause(self, attempt: int) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), backoff.delay_s(attempt))
        if self._stopping.is_set():
            raise _Stopping

    async def _set_aside(self, msg: Msg, exc: BaseException, held: Held) -> None:
        """Store ``msg`` as a dead letter (retrying while the bus is away), then ack it."""
        assert self._js is not None
        attempt = 0
        while True:
            try:
                await dead_letter_msg(
                    self._js, msg, service=SERVICE, reason=dead_letter_reason(exc),
                    detail=describe(exc),
                )  # fmt: skip
                break
            except (NatsError, TimeoutError):
                attempt += 1
                await self._pause(attempt)
        EVENTS_REJECTED.inc()
        await held.ack([msg])
