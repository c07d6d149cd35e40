"""Publishing campaign events and originate commands in bulk, with the server's ack."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.js import JetStreamContext

from voicebus.contracts import streams
from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.events import Envelope

MSG_ID = "Nats-Msg-Id"
_HEADERS = {"content-type": "application/json"}
_WINDOW = 256


class Publisher:
    """Stores events in ``VB_EVENTS`` and commands in ``VB_COMMANDS``.

    Each message's id is its ``Nats-Msg-Id``: republishing the same command
    inside the stream's duplicate window stores it once, which is what makes a
    dial that is re-sent after a crash safe.

    Args:
        js: a JetStream context; may be bound later with :meth:`bind`.
    """

    def __init__(self, js: JetStreamContext | None = None) -> None:
        self._js = js

    def bind(self, js: JetStreamContext) -> None:
        """Publish through ``js`` from now on."""
        self._js = js

    async def _one(self, subject: str, body: bytes, msg_id: str, stream: str) -> None:
        if self._js is None:
            raise RuntimeError("publisher used before it was bound")
        await self._js.publish(subject, body, stream=stream, headers={**_HEADERS, MSG_ID: msg_id})

    async def events(self, events: Sequence[Envelope]) -> None:
        """Publish ``events``, up to 256 in flight at once."""
        for i in range(0, len(events), _WINDOW):
            batch = events[i : i + _WINDOW]
            await asyncio.gather(
                *(self._one(e.subject, e.to_bytes(), e.id, streams.EVENTS.name) for e in batch)
            )

    async def commands(self, commands: Sequence[OriginateCall]) -> list[bool]:
        """Queue originate commands; True per command the server acknowledged."""
        results: list[bool] = []
        for i in range(0, len(commands), _WINDOW):
            batch = commands[i : i + _WINDOW]
            done = await asyncio.gather(
                *(self._one(c.subject, c.to_bytes(), c.id, streams.COMMANDS.name) for c in batch),
                return_exceptions=True,
            )
            results.extend(not isinstance(d, BaseException) for d in done)
        return results
