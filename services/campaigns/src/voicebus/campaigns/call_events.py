"""Call events → attempts: one ordered consumer, pulled in batches.

``call.started``, ``amd.detected``, ``call.ended`` and ``recording.ready``
share one durable consumer (``campaigns-call-events``, filtered on those four
types), so within an instance they are applied in stream order: a machine's
``amd.detected`` is known before its ``call.ended``. Consecutive
``call.ended`` are applied together in one transaction (calls that fail fast
end at the dial rate). FastStream's pull consumer takes one message per round
trip (see ``runtime.consumers``); this one pulls up to 256 with nats-py. A
batch that fails is nak'ed whole and comes back; applying it again changes
nothing (an ended attempt is skipped). Across instances the order is not
guaranteed; ``Outcomes.amd`` corrects an outcome when the result comes late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Final

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from pydantic import ValidationError

from voicebus.campaigns import control
from voicebus.campaigns.outcomes import Ended, Outcomes
from voicebus.contracts import streams, subjects
from voicebus.contracts.events import (
    AmdDetected,
    CallEnded,
    CallEvent,
    CallStarted,
    RecordingReady,
    parse_event,
)

log = logging.getLogger(__name__)

DURABLE: Final = "campaigns-call-events"
TYPES: Final = ("call.started", "amd.detected", "call.ended", "recording.ready")
BATCH: Final = 256
OUTCOMES = Counter("voicebus_campaigns_call_outcomes", "Call outcomes seen, by reason.", ["reason"])
REJECTED = Counter("voicebus_campaigns_events_rejected", "Call events that do not parse.")


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
            max_deliver=10,
            max_ack_pending=10 * BATCH,
            filter_subjects=[subjects.evt_filter(event_type=t) for t in TYPES],
        )
        sub = await js.pull_subscribe(
            subjects.evt_filter(event_type=TYPES[0]),
            durable=DURABLE,
            stream=streams.EVENTS.name,
            config=config,
        )
        try:
            while not stopping.is_set():
                try:
                    msgs = await sub.fetch(batch=BATCH, timeout=0.2)
                except (NatsTimeoutError, TimeoutError):
                    # nats-py may raise the builtin TimeoutError when the pull's deadline
                    # passes mid-fetch; either way there was nothing to take.
                    continue
                events: list[CallEvent] = []
                for msg in msgs:
                    try:
                        events.append(parse_event(msg.data))
                    except ValidationError:
                        REJECTED.inc()
                try:
                    await self.apply(events)
                except Exception:  # the batch comes back after the delay
                    log.exception("call event batch failed; it will be redelivered")
                    for msg in msgs:
                        await msg.nak(delay=1.0)
                    continue
                for msg in msgs:
                    await msg.ack()
        finally:
            with contextlib.suppress(NatsError):  # the connection may be closing
                await sub.unsubscribe()

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

    def _send(self, work: object) -> None:
        """Send control commands without holding up the batch (they wait for receipts)."""
        task: asyncio.Task[None] = asyncio.create_task(work)  # type: ignore[arg-type]
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
