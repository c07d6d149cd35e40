"""A phone on a browser call: what ``replay --audio`` and ``eval --audio`` call with.

It speaks the gateway's browser WebSocket protocol (``WS /ws/browser``, see the
gateway's ``browser/codec.py``): a start message with the call's signed parameters,
then caller audio as PCM16 in 20 ms pieces, in real time, silence whenever the caller
says nothing (voice activity detection needs the silence to hear a turn end), keys as
``dtmf`` messages, and ``stop`` to hang up.

It listens like a phone too: the agent's audio is counted as played at real speed and
each playback mark is confirmed once the audio before it has played (a ``clear`` drops
what is left and confirms the waiting marks at once), so the agent is paced, and can be
cut off, as on a real call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

CHUNK_MS: Final = 20
"""Caller audio goes in 20 ms pieces, as a phone sends it."""
AGENT_RATE: Final = 16_000
"""The gateway's browser calls send the agent's audio as PCM16 at 16 kHz."""


@dataclass(slots=True)
class Listener:
    """The agent's side as the phone hears it."""

    ws: ClientConnection
    played_until: float = 0.0
    """Monotonic time the agent audio received so far ends playing."""
    heard_at: float = 0.0
    """Monotonic time agent audio last arrived."""
    marks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    """Marks waiting for the audio before them to play, by name."""
    heard: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by each piece of agent audio (cleared by whoever waits for the next)."""

    def agent_audio(self, pcm: bytes) -> None:
        """Agent audio, queued behind what is still playing."""
        now = time.monotonic()
        self.heard_at = now
        self.heard.set()
        self.played_until = max(self.played_until, now) + len(pcm) / 2 / AGENT_RATE

    def mark(self, name: str) -> None:
        """Confirm ``name`` once the audio received before it has played."""
        delay = max(0.0, self.played_until - time.monotonic())
        self.marks[name] = asyncio.create_task(self._echo(name, delay))

    async def clear(self) -> None:
        """Drop what is left to play; marks waiting for it are confirmed now."""
        self.played_until = time.monotonic()
        waiting, self.marks = self.marks, {}
        for task in waiting.values():
            task.cancel()
        for name in waiting:
            await self._echo(name, 0.0)

    async def _echo(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self.marks.pop(name, None)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps({"type": "mark", "name": name}))

    async def listen(self) -> None:
        """Until the gateway closes the call (the agent hung up, or after ``stop``)."""
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.agent_audio(message)
                    continue
                try:
                    body = json.loads(message)
                except ValueError:
                    continue
                if body.get("type") == "mark" and isinstance(body.get("name"), str):
                    self.mark(body["name"])
                elif body.get("type") == "clear":
                    await self.clear()

    def quiet_since(self, since: float) -> float:
        """Seconds the agent has been silent, counted from ``since`` at the earliest."""
        return max(0.0, time.monotonic() - max(self.played_until, since))


class Mic:
    """Sends what the caller says in real time, and silence the rest of the time."""

    def __init__(self, ws: ClientConnection, sample_rate: int) -> None:
        self._ws = ws
        self._size = sample_rate * CHUNK_MS // 1000 * 2
        self._pending = bytearray()
        self._said = asyncio.Event()
        self._said.set()

    def say(self, pcm: bytes) -> None:
        """Queue ``pcm`` (PCM16 at the call's rate) after what is still being said."""
        self._pending += pcm
        self._said.clear()

    async def said(self) -> None:
        """Until everything queued has been sent."""
        await self._said.wait()

    async def run(self) -> None:
        """20 ms at a time, on the clock, until cancelled or the call is closed."""
        began, sent = time.monotonic(), 0
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(max(0.0, began + sent * CHUNK_MS / 1000 - time.monotonic()))
                chunk = bytes(self._pending[: self._size]) or bytes(self._size)
                del self._pending[: self._size]
                await self._ws.send(chunk)
                sent += 1
                if not self._pending:
                    self._said.set()


class Phone:
    """One browser call: ``async with Phone(url, parameters, rate) as phone``.

    Leaving the block hangs up (unless the agent did) and waits for the gateway to close.
    """

    def __init__(self, ws_url: str, parameters: dict[str, str], sample_rate: int) -> None:
        self._url = ws_url
        self._parameters = parameters
        self._rate = sample_rate
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        ws = await self._stack.enter_async_context(
            connect(self._url, open_timeout=10, max_size=2**20)
        )
        start = {"type": "start", "parameters": self._parameters,
                 "format": {"encoding": "s16le", "sample_rate": self._rate}}  # fmt: skip
        await ws.send(json.dumps(start))
        self.ws = ws
        self.listener = Listener(ws)
        self.mic = Mic(ws, self._rate)
        self.opened_at = time.monotonic()
        self._listening = asyncio.create_task(self.listener.listen())
        self._tasks = [self._listening, asyncio.create_task(self.mic.run())]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if not self.hung_up:
                with contextlib.suppress(ConnectionClosed):
                    await self.ws.send(json.dumps({"type": "stop"}))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._listening), 10.0)
        finally:
            for task in [*self._tasks, *self.listener.marks.values()]:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._stack.aclose()

    @property
    def hung_up(self) -> bool:
        """The gateway closed the call (the agent hung up, or the call ended)."""
        return self._listening.done()

    async def _until(self, waiting: asyncio.Future[None] | asyncio.Task[None]) -> None:
        """``waiting``, or the end of the call, whichever comes first."""
        await asyncio.wait({waiting, self._listening}, return_when=asyncio.FIRST_COMPLETED)

    async def say(self, pcm: bytes) -> float:
        """Say ``pcm`` in real time; when it was said (monotonic), or the hang-up's time."""
        self.mic.say(pcm)
        said = asyncio.ensure_future(self.mic.said())
        try:
            await self._until(said)
        finally:
            said.cancel()
        return time.monotonic()

    async def press(self, digits: str) -> float:
        """Press keys; when they were sent (monotonic)."""
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps({"type": "dtmf", "digits": digits}))
        return time.monotonic()

    async def answered(self, since: float, *, quiet_s: float, within_s: float) -> bool:
        """Until the agent, having spoken after ``since``, has been silent for ``quiet_s``.

        False when it said nothing within ``within_s`` (or hung up without a word).
        """
        if self.listener.heard_at <= since:
            self.listener.heard.clear()
            heard = asyncio.ensure_future(self.listener.heard.wait())
            try:
                left = max(0.0, since + within_s - time.monotonic())
                await asyncio.wait({heard, self._listening}, timeout=left,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                heard.cancel()
            if self.listener.heard_at <= since:
                return False
        await self.silent(since, quiet_s)
        return True

    async def silent(self, since: float, quiet_s: float) -> None:
        """Until the agent has been silent for ``quiet_s`` (counted from ``since`` at the
        earliest; its audio may still be coming), or the call ended."""
        while (left := quiet_s - self.listener.quiet_since(since)) > 0 and not self.hung_up:
            await asyncio.wait({self._listening}, timeout=left)
