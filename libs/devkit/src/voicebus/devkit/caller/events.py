"""The events of one call, followed on the bus while the simulated caller talks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import nats
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from voicebus.contracts import streams, subjects
from voicebus.contracts.events import CallEvent, parse_event


@asynccontextmanager
async def follow_call_events(
    nats_url: str, call_id: str, on_event: Callable[[CallEvent], None]
) -> AsyncIterator[None]:
    """Call ``on_event`` for every event of ``call_id``, from its first, until the block exits.

    Events come from the ``VB_EVENTS`` stream with an ordered consumer, so the ones
    published before the call id was known (``call.initiated``) are included. With
    no stream, it falls back to a core NATS subscription (from now on). Unparseable
    messages are skipped.

    Raises:
        nats.errors.Error: NATS cannot be reached.
        OSError: NATS cannot be reached.
    """
    nc = await nats.connect(
        nats_url,
        name="voicebus-call",
        connect_timeout=2,
        max_reconnect_attempts=3,
        reconnect_time_wait=0.5,
        error_cb=_quiet,
    )
    subject = subjects.evt_filter(call_id=call_id)

    async def deliver(msg: Msg) -> None:
        # A core subscriber must not answer msg.reply: that is JetStream's ack inbox.
        try:
            event = parse_event(msg.data)
        except ValidationError:
            return
        on_event(event)

    sub: Subscription
    try:
        js = nc.jetstream()
        try:
            await js.stream_info(streams.EVENTS.name)
            sub = await js.subscribe(
                subject,
                cb=deliver,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
        except NotFoundError:
            sub = await nc.subscribe(subject, cb=deliver)
        try:
            yield
        finally:
            await sub.unsubscribe()
    finally:
        await nc.drain()


async def _quiet(err: Exception) -> None:
    """Connection errors surface as the connect call's exception, not as log noise."""
