"""Commands that ran out of deliveries go to ``VB_DEAD_LETTERS``, never silently away.

When a ``VB_COMMANDS`` consumer's ``max_deliver`` runs out, JetStream stops
delivering the command, leaves it in the stream and publishes the advisory
``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.VB_COMMANDS.<consumer>``. The
stream ``VB_ADVISORIES`` stores those advisories, so none is missed while the
command's owner is down. Each service with command consumers runs one
:class:`AdvisoryRelay` (a durable consumer ``<service>-dead-letters`` shared by
its instances): for every advisory it reads the command by its sequence, stores
it as a dead letter (reason ``max_deliveries``), deletes it from the work queue
and acknowledges the advisory. Every step is idempotent: a relay that dies
half-way repeats it, and the dead letter's ``Nats-Msg-Id`` (``<stream>:<seq>``)
keeps it stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Final

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from voicebus.contracts import streams, subjects
from voicebus.contracts.deadletters import DeadLetterReason
from voicebus.runtime import backoff
from voicebus.runtime.deadletters import Origin, dead_letter

__all__ = ["AdvisoryRelay"]

log = logging.getLogger(__name__)

_FETCH_TIMEOUT_S: Final = 1.0


class AdvisoryRelay:
    """Moves the commands of ``consumers`` that ran out of deliveries to ``VB_DEAD_LETTERS``.

    Args:
        js: a JetStream context.
        service: the service owning the consumers (the dead letters' subject token).
        consumers: its ``VB_COMMANDS`` durable names.
    """

    def __init__(self, js: JetStreamContext, service: str, consumers: Sequence[str]) -> None:
        self._js = js
        self._service = service
        self._consumers = list(consumers)
        self.durable = f"{service}-dead-letters"
        self._task: asyncio.Task[None] | None = None

    def _config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30,
            max_deliver=-1,
            filter_subjects=[
                subjects.max_deliveries_advisory(streams.COMMANDS.name, c) for c in self._consumers
            ],
        )

    async def start(self) -> None:
        """Create (or update) the advisories consumer and start relaying."""
        await self._js.add_consumer(streams.ADVISORIES.name, config=self._config())
        self._task = asyncio.create_task(self._run(), name="dead-letter-relay")

    async def stop(self) -> None:
        """Stop relaying (an advisory in hand is finished or comes back later)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        sub = await self._js.pull_subscribe_bind(self.durable, stream=streams.ADVISORIES.name)
        try:
            while True:
                try:
                    msgs = await sub.fetch(1, timeout=_FETCH_TIMEOUT_S)
                except (NatsTimeoutError, TimeoutError):
                    continue
                except NatsError:
                    log.warning("advisory pull failed; retrying", exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                for msg in msgs:
                    await self._relay(msg)
        finally:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()

    async def _relay(self, msg: Msg) -> None:
        try:
            await self.relay(msg.data)
        except (NatsError, TimeoutError):
            delivered = msg.metadata.num_delivered or 1
            log.warning("command not yet set aside; retrying", extra={"service": self._service})
            with contextlib.suppress(NatsError):
                await msg.nak(delay=backoff.delay_s(delivered))
            return
        with contextlib.suppress(NatsError):
            await msg.ack()

    async def relay(self, advisory: bytes) -> bool:
        """Handle one advisory; True if a command was set aside (False: already gone).

        Raises:
            nats.errors.Error, TimeoutError: the bus failed; try again later.
        """
        try:
            body = json.loads(advisory)
            stream, consumer = str(body["stream"]), str(body["consumer"])
            seq, deliveries = int(body["stream_seq"]), int(body.get("deliveries", 0))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable max-deliveries advisory ignored")
            return False
        try:
            stored = await self._js.get_msg(stream, seq)
        except NotFoundError:
            return False  # acknowledged late, or already moved by an earlier attempt
        await dead_letter(
            self._js,
            service=self._service,
            reason=DeadLetterReason.MAX_DELIVERIES,
            detail=f"{consumer} gave up after {deliveries} deliveries",
            subject=stored.subject or "",
            data=stored.data or b"",
            headers=stored.headers,
            origin=Origin(stream, consumer, deliveries, seq),
        )
        with contextlib.suppress(NotFoundError):
            await self._js.delete_msg(stream, seq)
        return True
