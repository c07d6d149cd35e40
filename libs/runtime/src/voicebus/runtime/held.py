"""Messages held while their handling waits (an outage): kept from redelivery, then settled.

A batch that cannot be stored yet stays with the instance that pulled it: every
third of the ack wait its unsettled messages are marked in progress, so
JetStream does not hand them to another instance (and count a delivery) while
this one waits for the database. Acked messages leave the set; on release, what
is still held is handed back (a short negative ack) for any instance to take.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Final

from nats.aio.msg import Msg
from nats.errors import Error as NatsError

__all__ = ["KEEP_EVERY_S", "Held"]

KEEP_EVERY_S: Final = 10.0
"""How often held messages are marked in progress (a third of the usual 30 s ack wait)."""
_HAND_BACK_S: Final = 1.0


class Held:
    """A batch's messages, marked in progress until each is acked or the batch released.

    Args:
        msgs: the messages pulled.
        every_s: how often they are marked in progress.
    """

    def __init__(self, msgs: Sequence[Msg], every_s: float = KEEP_EVERY_S) -> None:
        # By identity: nats-py's Msg is a dataclass compared by value, hence unhashable.
        self.pending = {id(m): m for m in msgs}
        self._every_s = every_s
        self._task = asyncio.create_task(self._keep(), name="held-messages")

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            for msg in list(self.pending.values()):
                with contextlib.suppress(NatsError):
                    await msg.in_progress()

    async def ack(self, msgs: Sequence[Msg]) -> None:
        """Acknowledge ``msgs`` (handled or set aside) and stop holding them."""
        for msg in msgs:
            self.pending.pop(id(msg), None)
            with contextlib.suppress(NatsError):
                await msg.ack()

    async def release(self) -> None:
        """Stop holding; whatever is still pending comes back to some instance soon."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for msg in self.pending.values():
            with contextlib.suppress(NatsError):
                await msg.nak(delay=_HAND_BACK_S)
        self.pending.clear()
