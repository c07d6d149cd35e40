"""Publishing campaign events and originate commands in bulk, with the server's ack."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.js import JetStreamContext

from voicebus.contracts import streams
from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.events import Envelope

MSG_ID = "Nats-Msg-Id"
_WINDOW = 512
ACK_TIMEOUT_S = 10.0


class Publisher:
    """Stores events in ``VB_EVENTS`` and commands in ``VB_COMMANDS``.

    Each message's id is its ``Nats-Msg-Id``: republishing the same command
    inside the stream's duplicate window stores it once, which is what makes a
    dial that is re-sent after a crash safe. Messages go out with nats-py's
    asynchronous publish (one reply subscription for all acks, no timer per
    message) and are awaited a window at a time.

    Args:
        js: a JetStream context; may be bound later with :meth:`bind`.
    """

    def __init__(self, js: JetStreamContext | None = None) -> None:
        self._js = js

    def bind(self, js: JetStreamContext) -> None:
        """Publish through ``js`` from now on."""
        self._js = js

    async def _many(self, messages: Sequence[Envelope], stream: str) -> list[bool]:
        return await self._send([(m.subject, m.id, m.to_bytes()) for m in messages], stream)

    async def raw(self, messages: Sequence[tuple[str, str, bytes]]) -> list[bool]:
        """Publish already-serialized events ``(subject, id, body)``; True per ack."""
        return await self._send(messages, streams.EVENTS.name)

    async def _send(self, messages: Sequence[tuple[str, str, bytes]], stream: str) -> list[bool]:
        if self._js is None:
            raise RuntimeError("publisher used before it was bound")
        acked: list[bool] = []
        for i in range(0, len(messages), _WINDOW):
            futures = []
            for subject, msg_id, body in messages[i : i + _WINDOW]:
                headers = {"content-type": "application/json", MSG_ID: msg_id}
                futures.append(
                    await self._js.publish_async(subject, body, stream=stream, headers=headers)
                )
            try:
                async with asyncio.timeout(ACK_TIMEOUT_S):
                    done = await asyncio.gather(*futures, return_exceptions=True)
            except TimeoutError:
                for f in futures:
                    f.cancel()
                done = [TimeoutError()] * len(futures)
            acked.extend(not isinstance(d, BaseException) for d in done)
        return acked

    async def events(self, events: Sequence[Envelope]) -> None:
        """Publish ``events`` now; raises if any was not acknowledged.

        Only for events that are not decisions (``campaign.progress``, recomputed every
        period); decisions go through the outbox (:mod:`voicebus.campaigns.outbox`).
        """
        if not events:
            return
        acked = await self._many(events, streams.EVENTS.name)
        if not all(acked):
            raise ConnectionError(f"{acked.count(False)} events were not acknowledged")

    async def commands(self, commands: Sequence[OriginateCall]) -> list[bool]:
        """Queue originate commands; True per command the server acknowledged."""
        return await self._many(commands, streams.COMMANDS.name)
