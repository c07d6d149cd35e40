"""Call events → attempts: one ordered consumer, pulled in batches.

``call.started``, ``amd.detected``, ``call.ended``, ``recording.ready`` and
``call.analyzed`` share one durable consumer (``campaigns-call-events``, filtered
on those five types), so within an instance they are applied in stream order: a machine's
``amd.detected`` is known before its ``call.ended``. Consecutive
``call.ended`` are applied together in one transaction (calls that fail fast
end at the dial rate). FastStream's pull consumer takes one message per round
trip (see ``runtime.consumers``); this one pulls up to 256 with nats-py.
Applying an event twice changes nothing (an ended attempt is skipped), so a batch
may be applied again in part. Across instances the order is not guaranteed;
``Outcomes.amd`` corrects an outcome when the result comes late.

No outcome is lost: while the database is unreachable the batch in hand is
retried with exponential backoff and jitter, and held (marked in progress) rather
than redelivered; the consumer has no delivery limit. A message that is not an
event, or an event whose data the database refuses, is set aside in
``VB_DEAD_LETTERS``; an event whose handling keeps failing for no known reason is
set aside after a few tries, alone, so that it holds up no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Final

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from pydantic import ValidationError

from voicebus.campaigns import control
from voicebus.campaigns.outcomes import Ended, Outcomes
from voicebus.contracts import streams, subjects
from voicebus.contracts.errors import ContractError
from voicebus.contracts.events import (
    AmdDetected,
    CallAnalyzed,
    CallEnded,
    CallEvent,
    CallStarted,
    RecordingReady,
    SuccessEvaluation,
    parse_event,
)
from voicebus.runtime import backoff
from voicebus.runtime.consumers import ensure_consumer
from voicebus.runtime.deadletters import dead_letter_msg
from voicebus.runtime.failures import Failure, classify, dead_letter_reason, describe
from voicebus.runtime.held import Held

log = logging.getLogger(__name__)

DURABLE: Final = "campaigns-call-events"
TYPES: Final = ("call.started", "amd.detected", "call.ended", "recording.ready", "call.analyzed")
BATCH: Final = 256
SERVICE: Final = "campaigns"
TRIES: Final = 3
"""Tries of one event that fails for no known reason before it is set aside."""
OUTCOMES = Counter("voicebus_campaigns_call_outcomes", "Call outcomes seen, by reason.", ["reason"])
REJECTED = Counter("voicebus_campaigns_events_rejected", "Call events set aside as dead letters.")


class _Stopping(Exception):  # noqa: N818 - a signal, not an error
    """The instance stops while a batch waits for the database."""


@dataclass
class CallEvents:
    """Applies call events to campaign attempts.

    Args:
        outcomes: the attempt logic.
        source: ``campaigns/<instance>`` for the control commands sent.
        max_call_s: longest call tracked.
    """

    outcomes: Outcomes
    source: str
    max_call_s: float
    nc: Client | None = None
    _sends: set[asyncio.Task[None]] = field(default_factory=set)

    async def consume(self, js: JetStreamContext, stopping: asyncio.Event) -> None:
        """Pull and apply call events until ``stopping`` (a batch in hand is finished)."""
        config = ConsumerConfig(
            durable_name=DURABLE,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30,
            max_deliver=-1,  # an outcome waits out any outage; it is never dropped
            max_ack_pending=10 * BATCH,
            filter_subjects=[subjects.evt_filter(event_type=t) for t in TYPES],
        )
        await ensure_consumer(js, streams.EVENTS.name, config)
        sub = await js.pull_subscribe_bind(DURABLE, stream=streams.EVENTS.name)
        try:
            while not stopping.is_set():
                try:
                    msgs = await sub.fetch(batch=BATCH, timeout=0.2)
                except (NatsTimeoutError, TimeoutError):
                    # nats-py may raise the builtin TimeoutError when the pull's deadline
                    # passes mid-fetch; either way there was nothing to take.
                    continue
                held = Held(msgs)
                try:
                    await self.settle(js, msgs, held, stopping)
                except _Stopping:
                    log.warning("campaigns stopping while the database is unreachable")
                finally:
                    await held.release()
        finally:
            with contextlib.suppress(NatsError):  # the connection may be closing
                await sub.unsubscribe()

    async def settle(
        self, js: JetStreamContext, msgs: list[Msg], held: Held, stopping: asyncio.Event
    ) -> None:
        """Apply one pulled batch and acknowledge each message once applied or set aside."""
        items: list[tuple[Msg, CallEvent]] = []
        for msg in msgs:
            try:
                items.append((msg, parse_event(msg.data)))
            except (ValidationError, ContractError) as err:
                await self._set_aside(js, msg, err, held, stopping)
        attempt = 0
        while items:
            try:
                await self.apply([event for _, event in items])
            except Exception as exc:  # classified: an outage waits, anything else is isolated
                if classify(exc) is not Failure.TRANSIENT:
                    for msg, event in items:
                        await self._alone(js, msg, event, held, stopping)
                    return
                attempt += 1
                if attempt & (attempt - 1) == 0:
                    fields = {"attempt": attempt, "error": type(exc).__name__}
                    log.warning("call events not applied on an outage; retrying", extra=fields)
                await _pause(stopping, attempt)
                continue
            await held.ack([msg for msg, _ in items])
            return

    async def _alone(
        self, js: JetStreamContext, msg: Msg, event: CallEvent, held: Held, stopping: asyncio.Event
    ) -> None:
        """Apply one event on its own; set it aside if it is at fault or keeps failing."""
        attempt = tries = 0
        while True:
            try:
                await self.apply([event])
            except Exception as exc:  # classified below
                kind = classify(exc)
                if kind is Failure.TRANSIENT or (kind is Failure.UNKNOWN and tries + 1 < TRIES):
                    tries += kind is Failure.UNKNOWN
                    attempt += 1
                    if kind is Failure.UNKNOWN:
                        log.error("call event failed; retrying", exc_info=exc,
                                  extra={"call_id": event.call_id})  # fmt: skip
                    await _pause(stopping, attempt)
                    continue
                await self._set_aside(js, msg, exc, held, stopping)
                return
            await held.ack([msg])
            return

    async def _set_aside(
        self, js: JetStreamContext, msg: Msg, exc: BaseException, held: Held,
        stopping: asyncio.Event,
    ) -> None:  # fmt: skip
        attempt = 0
        while True:
            try:
                await dead_letter_msg(js, msg, service=SERVICE, reason=dead_letter_reason(exc),
                                      detail=describe(exc))  # fmt: skip
                break
            except (NatsError, TimeoutError):
                attempt += 1
                await _pause(stopping, attempt)
        REJECTED.inc()
        await held.ack([msg])

    async def apply(self, events: list[CallEvent]) -> None:
        """Apply events in order; runs of ``call.ended`` go in one transaction."""
        ended: list[Ended] = []
        for event in events:
            if isinstance(event, CallEnded):
                OUTCOMES.labels(event.data.reason.value).inc()
                d = event.data
                ended.append(Ended(event.tenant_id, event.call_id, d.reason, d.duration_s))
                continue
            if ended:
                await self.outcomes.ended_many(ended)
                ended = []
            await self._one(event)
        if ended:
            await self.outcomes.ended_many(ended)

    async def _one(self, event: CallEvent) -> None:
        tenant, call = event.tenant_id, event.call_id
        if isinstance(event, CallStarted):
            spec = await self.outcomes.answered(tenant, call, self.max_call_s)
            if spec is not None and self.nc is not None:
                self._send(control.on_answer(self.nc, spec, tenant, call, self.source))
        elif isinstance(event, AmdDetected):
            result = event.data.result.value
            spec = await self.outcomes.amd(tenant, call, result)
            if spec is not None and self.nc is not None:
                detector = event.data.detector
                self._send(
                    control.on_amd(self.nc, spec, tenant, call, result, self.source, detector)
                )
        elif isinstance(event, RecordingReady):
            await self.outcomes.recording(tenant, call, event.data.recording_id)
        elif isinstance(event, CallAnalyzed):
            await self.outcomes.analyzed(tenant, call, event.data.disposition,
                                         success_cell(event.data.success))  # fmt: skip

    def _send(self, work: object) -> None:
        """Send control commands without holding up the batch (they wait for receipts)."""
        task: asyncio.Task[None] = asyncio.create_task(work)  # type: ignore[arg-type]
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)


async def _pause(stopping: asyncio.Event, attempt: int) -> None:
    """Back off before retry ``attempt``; raise :class:`_Stopping` if shutdown began."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), backoff.delay_s(attempt))
    if stopping.is_set():
        raise _Stopping


def success_cell(success: SuccessEvaluation | None) -> str | None:
    """The report's success column: ``pass``/``fail``, or the score (``7.5``)."""
    if success is None:
        return None
    if success.passed is not None:
        return "pass" if success.passed else "fail"
    return None if success.score is None else f"{success.score:g}"
