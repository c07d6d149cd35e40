"""Where a call's pipeline sends its output: audio frames, events and ``clear``.

The pipeline only knows :class:`CallOutlet`; :class:`BusOutlet` is the bus (raw
nats-py for audio, FastStream for events and control), and tests pass a recorder.
Events are published in order by one task per call, so a JetStream ack never
holds up the audio path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.errors import OutboundBufferLimitError
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from voicebus.contracts import subjects
from voicebus.contracts.audio import AudioFrame
from voicebus.contracts.commands import Clear, ClearData
from voicebus.contracts.events import Envelope
from voicebus.media.metrics import AUDIO_OUT_DROPPED, EVENTS_FAILED
from voicebus.runtime.publish import publish_event, send_control
from voicebus.runtime.telemetry import within

log = logging.getLogger(__name__)


class CallOutlet(Protocol):
    """The output side of one call's pipeline."""

    async def send_audio(self, frame: AudioFrame) -> None:
        """Publish one frame of agent audio (``audio.out``)."""
        ...

    def emit(self, event: Envelope) -> None:
        """Publish an event after those emitted before it, without waiting."""
        ...

    async def clear(self, utterance_id: str | None) -> None:
        """Tell the gateway to flush agent audio not yet played (``ctl.clear``)."""
        ...


class BusOutlet:
    """:class:`CallOutlet` on the bus.

    Args:
        broker: the service's broker (events, control commands).
        nc: the raw client (audio frames).
        tenant_id: the call's tenant.
        call_id: the call.
        source: ``media/<instance>``, the source of commands sent.
        drain_timeout_s: on close, how long events still queued may take to publish.
    """

    def __init__(
        self,
        broker: NatsBroker,
        nc: Client,
        *,
        tenant_id: str,
        call_id: str,
        source: str,
        drain_timeout_s: float = 2.0,
    ) -> None:
        self._broker = broker
        self._nc = nc
        self._tenant_id = tenant_id
        self._call_id = call_id
        self._source = source
        self._subject = subjects.audio_out(call_id)
        self._drain_timeout_s = drain_timeout_s
        self._queue: asyncio.Queue[tuple[Envelope, Context] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = asyncio.create_task(
            self._publish_forever(), name=f"media-events-{call_id}"
        )

    async def send_audio(self, frame: AudioFrame) -> None:
        """Publish one frame on ``vb.audio.<call>.out``.

        While NATS is unreachable frames wait in the client's buffer; once it is full
        a frame is dropped and counted: the call goes on when NATS is back.
        """
        try:
            await self._nc.publish(self._subject, frame.pcm, headers=frame.headers())
        except OutboundBufferLimitError:
            AUDIO_OUT_DROPPED.inc()

    def emit(self, event: Envelope) -> None:
        """Queue an event for the call's publisher task.

        The caller's trace context goes along, so the event is published in the
        trace (and under the span) it belongs to.
        """
        if self._task is not None:
            self._queue.put_nowait((event, otel_context.get_current()))

    async def clear(self, utterance_id: str | None) -> None:
        """Send ``Clear`` on ``vb.ctl.<call>.clear``."""
        command = Clear(
            tenant_id=self._tenant_id,
            call_id=self._call_id,
            source=self._source,
            data=ClearData(utterance_id=utterance_id, reason="barge_in"),
        )
        await send_control(self._broker, command)

    async def close(self) -> None:
        """Publish what is queued (bounded by ``drain_timeout_s``), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(task), self._drain_timeout_s)
        except TimeoutError:
            log.warning("call events dropped at close", extra={"call_id": self._call_id})
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _publish_forever(self) -> None:
        while (item := await self._queue.get()) is not None:
            event, context = item
            try:
                with within(context):
                    await publish_event(self._broker, event)
            except Exception:  # a NATS outage must not stop the call: count, log, go on
                EVENTS_FAILED.inc()
                log.exception(
                    "event publish failed",
                    extra={"call_id": self._call_id, "event": event.event_name},
                )
