"""Batched pulls from a durable JetStream consumer, without a task per message.

nats-py's ``fetch`` waits for each message of a batch with ``next_msg``, which
wraps a queue read in ``asyncio.wait_for`` — a task per message, a third of
audit's CPU at thousands of events per second. This sends the same pull
requests (``$JS.API.CONSUMER.MSG.NEXT``) itself and collects the messages in
one subscription callback:

- ``{"batch": N, "no_wait": true}`` returns what is there (a backlog) at once,
  ending with a ``404`` status when there are fewer than N;
- when there was nothing, ``{"batch": 1, "expires": …}`` waits for the next
  message, so a trickle of events is stored as it comes, not a batch later.

Every delivered message is returned whichever request it answered; status
messages are only heeded for the current request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Final

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

_STATUS: Final = "Status"
_END: Final = frozenset({"404", "408", "409"})  # no messages, expired, conflict
_HEARTBEAT: Final = "100"


class Puller:
    """Pulls batches from ``stream``'s durable consumer ``durable`` (which must exist).

    Args:
        nc: a connected client.
        stream: the stream name.
        durable: the consumer's durable name.
    """

    def __init__(self, nc: Client, stream: str, durable: str) -> None:
        self._nc = nc
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._prefix = nc.new_inbox()
        self._sub: Subscription | None = None
        self._request = 0
        self._msgs: list[Msg] = []
        self._want = 0
        self._done = asyncio.Event()

    async def start(self) -> None:
        """Subscribe to the replies."""
        self._sub = await self._nc.subscribe(f"{self._prefix}.*", cb=self._on_msg)

    async def stop(self) -> None:
        """Unsubscribe."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to ``batch`` messages: those waiting now, else the next one within ``timeout``."""
        msgs = await self._pull({"batch": batch, "no_wait": True}, batch, timeout)
        if msgs:
            return msgs
        expires = int(max(timeout - 0.05, 0.01) * 1e9)
        return await self._pull({"batch": 1, "expires": expires}, 1, timeout)

    async def _pull(self, request: dict[str, object], want: int, timeout: float) -> list[Msg]:
        self._request += 1
        self._want = want  # messages that came after the last pull returned are kept
        self._done.clear()
        reply = f"{self._prefix}.{self._request}"
        await self._nc.publish(self._api, json.dumps(request).encode(), reply=reply)
        # On a timeout what arrived is returned; anything later joins the next pull.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), timeout + 1.0)
        msgs, self._msgs = self._msgs, []
        return msgs

    async def _on_msg(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self._msgs.append(msg)
            if len(self._msgs) >= self._want:
                self._done.set()
        elif status in _END and msg.subject == f"{self._prefix}.{self._request}":
            self._done.set()
        # Heartbeats and the statuses of earlier requests: nothing to do.
