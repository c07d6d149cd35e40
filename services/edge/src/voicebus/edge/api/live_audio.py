"""The edge's side of a live call's audio and supervision events (a fake in unit tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.aio.msg import Msg

from voicebus.contracts.events import Envelope
from voicebus.runtime.publish import publish_event


class Unsubscribe(Protocol):
    """A subscription that can be ended."""

    async def unsubscribe(self, limit: int = 0) -> None:
        """Stop receiving."""
        ...


class LiveAudio(Protocol):
    """Hear a call's audio, speak into it, and record what an operator did."""

    async def listen(self, subject: str, cb: Callable[[Msg], Awaitable[None]]) -> Unsubscribe:
        """Receive every frame on ``subject`` (core NATS) until unsubscribed."""
        ...

    async def speak(self, subject: str, pcm: bytes, headers: dict[str, str]) -> None:
        """Publish one frame on ``subject`` (core NATS)."""
        ...

    async def record(self, event: Envelope) -> None:
        """Store ``event`` in ``VB_EVENTS`` (waits for the server's ack)."""
        ...


class NatsLiveAudio:
    """:class:`LiveAudio` over the running edge service's connections."""

    def __init__(self, connection: Callable[[], Client], broker: Callable[[], NatsBroker]) -> None:
        self._connection = connection
        self._broker = broker

    async def listen(self, subject: str, cb: Callable[[Msg], Awaitable[None]]) -> Unsubscribe:
        """A raw subscription: audio is 50 frames a second per direction."""
        return await self._connection().subscribe(subject, cb=cb)

    async def speak(self, subject: str, pcm: bytes, headers: dict[str, str]) -> None:
        """Core NATS publish with the frame's headers."""
        await self._connection().publish(subject, pcm, headers=headers)

    async def record(self, event: Envelope) -> None:
        """JetStream publish, deduplicated on the event id."""
        await publish_event(self._broker(), event)
