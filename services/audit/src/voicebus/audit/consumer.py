"""Audit's durable consumer of ``VB_EVENTS``: pulled in batches, stored a batch per transaction.

One event per transaction caps audit at a few hundred events per second; a batch
of up to ``batch_size`` events is one round trip for the events and one for their
calls. Pulled with :class:`~voicebus.audit.puller.Puller`, not FastStream: FastStream
0.7 with nats-py 2.16 mishandles pulls of more than one message (see
``voicebus.runtime.consumers``), and nats-py's own ``fetch`` costs a task per message.

Exactly once: every message is acked only after the transaction that stored it
committed, and the event id is the primary key (``ON CONFLICT DO NOTHING``), so
a redelivery after a crash between commit and ack stores nothing twice. A batch
whose transaction fails is nak'ed with a delay and redelivered; a message that
is not a valid event is acked and counted, since redelivering it cannot help.
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
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from voicebus.audit.puller import Puller
from voicebus.audit.store import EventStore, Incoming
from voicebus.contracts import streams, subjects
from voicebus.contracts.events import parse_event

log = logging.getLogger(__name__)

DURABLE: Final = "audit-call-events"
EVENTS_STORED: Final = Counter(
    "voicebus_audit_events_stored", "Events persisted, by whether they were new.", ["new"]
)
EVENTS_REJECTED: Final = Counter(
    "voicebus_audit_events_rejected", "Messages on VB_EVENTS that are not a valid event."
)
BATCH: Final = Histogram(
    "voicebus_audit_batch_events",
    "Events stored per transaction.",
    buckets=(1, 2, 5, 10, 50, 100, 250, 500, 1000, 2000, 3000),
)
_RETRY_DELAY_S: Final = 1.0
_STORE_ERRORS: Final = (DBAPIError, OSError, ConnectionError)


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


def consumer_config(ack_wait_s: float = 30.0, max_deliver: int = 10) -> ConsumerConfig:
    """The durable consumer: every event from the stream's start, explicit acks."""
    return ConsumerConfig(
        durable_name=DURABLE,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
        max_ack_pending=20_000,
    )


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

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        """Create the durable consumer if missing and start pulling."""
        try:
            await js.consumer_info(streams.EVENTS.name, DURABLE)
        except NotFoundError:
            config = consumer_config()
            config.filter_subject = subjects.evt_filter()
            await js.add_consumer(streams.EVENTS.name, config)
        puller = Puller(nc, streams.EVENTS.name, DURABLE)
        await puller.start()
        self._puller = puller
        self._task = asyncio.create_task(self._run(puller), name="audit-consumer")

    async def stop(self) -> None:
        """Stop pulling; a batch being stored finishes first (its acks included)."""
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
        while True:
            try:
                msgs = await puller.fetch(self._batch_size, timeout=self._timeout)
            except NatsError:
                log.warning("event pull failed; retrying", exc_info=True)
                await asyncio.sleep(_RETRY_DELAY_S)
                continue
            if not msgs:
                continue
            # The next batch is pulled while this one is stored; batches are stored one
            # after another, in order (a later event's values must win). Shielded: a
            # stop waits for the batch's commit and acks.
            if self._inflight is not None:
                await asyncio.shield(self._inflight)
            self._inflight = asyncio.create_task(self.handle(msgs))

    async def handle(self, msgs: list[Msg]) -> None:
        """Store one pulled batch and settle every message of it."""
        batch: list[Incoming] = []
        valid: list[Msg] = []
        rejected: list[Msg] = []
        for msg in msgs:
            try:
                event = parse_event(msg.data)
            except ValidationError as err:
                EVENTS_REJECTED.inc()
                log.warning("invalid event ignored", extra={"errors": err.error_count()})
                rejected.append(msg)
                continue
            batch.append((event, stream_sequence(msg.reply), msg.data.decode()))
            valid.append(msg)
        try:
            new = await self._store.append_many(batch)
        except _STORE_ERRORS:
            log.exception("storing events failed; they will be redelivered")
            for msg in valid:
                with contextlib.suppress(NatsError):
                    await msg.nak(delay=_RETRY_DELAY_S)
            valid = []
        else:
            BATCH.observe(len(batch))
            EVENTS_STORED.labels(new="true").inc(new)
            EVENTS_STORED.labels(new="false").inc(len(batch) - new)
        for msg in (*valid, *rejected):
            with contextlib.suppress(NatsError):
                await msg.ack()
