"""Where the conversation's output goes: control commands and events.

The conversation talks to an :class:`Outbox`, not to the broker, so its logic
is tested with :class:`RecordingOutbox` and no bus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.errors import Error as NatsError
from prometheus_client import Counter
from pydantic import BaseModel

from voicebus.contracts.commands import ControlCommand, Say
from voicebus.contracts.events import Envelope
from voicebus.runtime.publish import deliver_control, publish_event, send_control

log = logging.getLogger(__name__)

SAY_UNDELIVERED = Counter(
    "voicebus_orchestrator_say_undelivered", "Say chunks no media instance confirmed."
)


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
        connection: the service's raw NATS connection (available once connected);
            ``Say`` goes through it with delivery confirmation.
    """

    def __init__(
        self, broker: NatsBroker, source: str, connection: Callable[[], Client] | None = None
    ) -> None:
        self._broker = broker
        self._connection = connection
        self.source = source

    async def control(self, command: ControlCommand) -> None:
        """Send on ``vb.ctl.<call>.<verb>``.

        ``Say`` waits until media confirms receipt (the greeting can be ready before
        media has claimed the call); other commands are fire-and-forget.
        """
        if isinstance(command, Say) and self._connection is not None:
            if not await deliver_control(self._connection(), command):
                SAY_UNDELIVERED.inc()
                log.warning("say not delivered", extra={"call_id": command.call_id})
            return
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


def mask(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` (JSON-like) with every occurrence of each secret in its strings (mapping
    keys included) replaced by as many ``*``."""
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, "*" * len(secret))
        return value
    if isinstance(value, dict):
        return {mask(k, secrets): mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, secrets) for v in value]
    return value


class MaskingOutbox:
    """An outbox that masks a call's secrets (sensitive keypad inputs) in the events it
    publishes; commands go out as they are (a ``Say`` is never stored).

    Args:
        inner: the outbox events and commands go to.
        secrets: the call's secrets now (read at each publish).
    """

    def __init__(self, inner: Outbox, secrets: Callable[[], Sequence[str]]) -> None:
        self._inner = inner
        self._secrets = secrets
        self.source = inner.source

    async def control(self, command: ControlCommand) -> None:
        """Send the command unchanged."""
        await self._inner.control(command)

    async def publish(self, event: Envelope) -> None:
        """Publish ``event`` with the secrets masked in its data."""
        secrets = self._secrets()
        data = getattr(event, "data", None)  # every concrete event has one
        if secrets and isinstance(data, BaseModel):
            masked = type(data).model_validate(mask(data.model_dump(mode="json"), secrets))
            event = event.model_copy(update={"data": masked})
        await self._inner.publish(event)
