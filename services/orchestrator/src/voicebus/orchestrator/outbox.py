"""Where the conversation's output goes: control commands and events.

The conversation talks to an :class:`Outbox`, not to the broker, so its logic
is tested with :class:`RecordingOutbox` and no bus.
"""

from __future__ import annotations

import logging
from typing import Protocol

from faststream.nats import NatsBroker
from nats.errors import Error as NatsError

from voicebus.contracts.commands import ControlCommand
from voicebus.contracts.events import Envelope
from voicebus.runtime.publish import publish_event, send_control

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """Sends one call's commands and events."""

    source: str
    """``<service>/<instance>``: the ``source`` of everything sent."""

    async def control(self, command: ControlCommand) -> None:
        """Send a per-call control command (``Say``, ``HangUp``...)."""
        ...

    async def publish(self, event: Envelope) -> None:
        """Publish an event to ``VB_EVENTS``."""
        ...


class BusOutbox:
    """The real outbox: core NATS for commands, JetStream for events.

    Args:
        broker: the service's broker.
        source: ``<service>/<instance>``.
    """

    def __init__(self, broker: NatsBroker, source: str) -> None:
        self._broker = broker
        self.source = source

    async def control(self, command: ControlCommand) -> None:
        """Send on ``vb.ctl.<call>.<verb>``."""
        await send_control(self._broker, command)

    async def publish(self, event: Envelope) -> None:
        """Store in ``VB_EVENTS``; a failure is logged, never raised (the call goes on)."""
        try:
            await publish_event(self._broker, event)
        except (NatsError, TimeoutError):
            log.exception(
                "event publish failed", extra={"call_id": event.call_id, "type": event.event_name}
            )


class RecordingOutbox:
    """An outbox that keeps everything, in order (tests, dry runs)."""

    def __init__(self, source: str = "orchestrator/test") -> None:
        self.source = source
        self.sent: list[ControlCommand | Envelope] = []

    async def control(self, command: ControlCommand) -> None:
        """Record the command."""
        self.sent.append(command)

    async def publish(self, event: Envelope) -> None:
        """Record the event."""
        self.sent.append(event)
