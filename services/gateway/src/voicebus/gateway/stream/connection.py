"""One media WebSocket on the lean server: frames in, caps, the start deadline.

picows calls :meth:`MediaConnection.on_ws_frame` synchronously for each frame,
whose payload is valid only during the call: the message is parsed there and
then, straight from the socket's buffer. Caller audio and mark echoes (nearly
every message) are handled in the callback (:class:`~.caller_to_bus.CallerToBus`
only queues); ``start``, keys and ``stop`` go to one ordered lane per connection
(a task that exists only while it has work), since they await the bus. Messages
that arrive while the start is being verified wait, unparsed (a codec may learn
its format from the start), up to two seconds of audio.

Caps: a message over ``ws_max_message_bytes`` is counted and ignored (a frame
over four times that closes the socket in picows, 1009); more than
``ws_max_bytes_per_s`` inbound (two seconds of burst) closes it (1008), so does
an outbound backlog over ``ws_max_backlog_bytes`` (the peer stopped reading),
and so does a socket without a valid start after ``ws_start_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from voicebus.contracts.events import EndReason
from voicebus.gateway.metrics import (
    WS_MESSAGES_IN,
    WS_MESSAGES_OUT,
    IgnoreReason,
    RefusalReason,
    count_ignored,
    count_refused,
)
from voicebus.gateway.providers.base import (
    BinaryStreamCodec,
    DtmfIn,
    Ignored,
    MarkPlayed,
    MediaIn,
    Provider,
    StreamEvent,
    StreamInfo,
    StreamStart,
    StreamStop,
)
from voicebus.gateway.stream.caller_to_bus import CallerToBus
from voicebus.gateway.stream.media_call import CLOSE_POLICY_VIOLATION, MediaCall, StreamHub

log = logging.getLogger(__name__)

CLOSE_SERVICE_RESTART: Final = 1012
MAX_EARLY_MESSAGES: Final = 100
"""Messages kept while the start is verified: two seconds of 20 ms audio."""
_BINARY: Final = Ignored(IgnoreReason.BINARY)
_BEFORE_START: Final = Ignored(IgnoreReason.BEFORE_START)
_OVERSIZE: Final = Ignored(IgnoreReason.OVERSIZE)
_FRAGMENT: Final = Ignored(IgnoreReason.INVALID_MESSAGE)
_TEXT, _BIN, _CLOSE = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CLOSE


class MediaConnection(WSListener):
    """The listener of one media WebSocket (see the module docstring).

    Args:
        hub: what every connection of the process shares.
        provider: the provider this path belongs to.
        query: the upgrade request's query parameters.
        on_open: called once the socket is open.
        on_done: called once the connection's call has ended (or it never started).
    """

    def __init__(
        self,
        hub: StreamHub,
        provider: Provider,
        query: Mapping[str, str],
        on_open: Callable[[MediaConnection], None],
        on_done: Callable[[MediaConnection], None],
    ) -> None:
        settings = hub.gateway.settings
        self._hub = hub
        self._provider = provider
        self._name = provider.name
        self._count_in = WS_MESSAGES_IN.labels(provider.name).inc
        self._count_out = WS_MESSAGES_OUT.labels(provider.name).inc
        self._codec = provider.codec()
        self._query = query
        self._on_open = on_open
        self._on_done = on_done
        self._max_message = settings.ws_max_message_bytes
        self._max_backlog = settings.ws_max_backlog_bytes
        self._bytes_per_s = float(settings.ws_max_bytes_per_s)
        self._burst = 2.0 * settings.ws_max_bytes_per_s
        self._allowance = self._burst
        self._last_frame_at = time.monotonic()
        self._start_timeout_s = settings.ws_start_timeout_s
        self._transport: WSTransport | None = None
        self._call = MediaCall(hub, provider, self._codec, self, self, query)
        self._inbound: CallerToBus | None = None
        self._start_seen = False
        self._early: list[tuple[bool, bytes]] = []
        self._lane: deque[StreamEvent] = deque()
        self._lane_task: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._closing = False
        self._paused = False
        self._end_reason: EndReason | None = None
        self.done: asyncio.Future[None] | None = None
        """Resolved once the connection's call has ended."""

    # -- picows callbacks ---------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        """The upgrade succeeded: arm the start deadline."""
        self._transport = transport
        loop = asyncio.get_running_loop()
        self.done = loop.create_future()
        self._deadline = loop.call_later(self._start_timeout_s, self._start_deadline)
        self._on_open(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """One frame: parse it and act, or count why it is ignored."""
        kind = frame.msg_type
        if kind is _TEXT or kind is _BIN:
            self._count_in()
            size = frame.payload_size
            if not self._within_rate(size):
                return
            if size > self._max_message:
                self._route(_OVERSIZE)
            elif not frame.fin:
                self._route(_FRAGMENT)  # providers send whole messages: fragments are malformed
            elif self._inbound is None and self._start_seen:  # the start is being verified
                if len(self._early) < MAX_EARLY_MESSAGES and not self._closing:
                    self._early.append((kind is _TEXT, frame.get_payload_as_bytes()))
                else:
                    self._route(_BEFORE_START)
            else:
                self._message(kind is _TEXT, frame.get_payload_as_memoryview())
        elif kind is _CLOSE:
            if not self._closing:
                self._closing = True
                transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif kind is WSMsgType.CONTINUATION:
            self._route(_FRAGMENT)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """The socket is gone: end the call (if it started) in a task."""
        self._closing = True
        if self._deadline is not None:
            self._deadline.cancel()
        asyncio.get_running_loop().create_task(self._finish(), name="media-call-finish")

    # -- routing ------------------------------------------------------------------------

    def _message(self, text: bool, data: bytes | memoryview) -> None:
        codec = self._codec
        if text:
            self._route(codec.parse(data))
        elif isinstance(codec, BinaryStreamCodec):
            self._route(codec.parse_bytes(data))
        else:
            self._route(_BINARY)

    def _route(self, event: StreamEvent) -> None:
        kind = type(event)
        if kind is MediaIn:
            inbound = self._inbound
            if inbound is not None:
                inbound.media(event)  # type: ignore[arg-type]  # checked by kind
            else:
                count_ignored(self._name, IgnoreReason.BEFORE_START)
        elif kind is MarkPlayed:
            if self._inbound is not None:
                self._inbound.mark(event)  # type: ignore[arg-type]
            else:
                count_ignored(self._name, IgnoreReason.UNKNOWN_MARK)
        elif kind is Ignored:
            count_ignored(self._name, event.reason)  # type: ignore[union-attr]
        elif kind is not StreamInfo:
            if kind is StreamStart:
                if self._start_seen:
                    count_ignored(self._name, IgnoreReason.DUPLICATE_START)
                    return
                self._start_seen = True
            self._lane.append(event)
            if self._lane_task is None:
                self._lane_task = asyncio.get_running_loop().create_task(self._run_lane())

    async def _run_lane(self) -> None:
        try:
            while self._lane:
                event = self._lane.popleft()
                if isinstance(event, StreamStart):
                    await self._start(event)
                elif isinstance(event, DtmfIn):
                    await self._call.dtmf(event)
                elif isinstance(event, StreamStop):
                    # The caller hung up; a transfer under way still names the end.
                    self._close(1000)
        finally:
            self._lane_task = None

    async def _start(self, event: StreamStart) -> None:
        if self._closing:
            return
        started = await self._call.start(event)
        early, self._early = self._early, []
        if not started or self._call.parts is None:
            return
        if self._deadline is not None:
            self._deadline.cancel()
        self._inbound = self._call.parts.inbound
        for text, data in early:
            self._message(text, data)

    # -- caps -----------------------------------------------------------------------------

    def _within_rate(self, size: int) -> bool:
        now = time.monotonic()
        allowance = self._allowance + (now - self._last_frame_at) * self._bytes_per_s
        self._allowance = (allowance if allowance < self._burst else self._burst) - size
        self._last_frame_at = now
        if self._allowance >= 0:
            return True
        if not self._closing:
            count_refused(RefusalReason.RATE)
            log.warning("media socket over its byte rate", extra={"provider": self._name})
            self.end(EndReason.ERROR, CLOSE_POLICY_VIOLATION)
        return False

    def _start_deadline(self) -> None:
        self._deadline = None
        if self._inbound is None and not self._closing and self._lane_task is None:
            count_refused(RefusalReason.NO_START)
            log.warning("media socket sent no valid start in time", extra={"provider": self._name})
            self.end(EndReason.ERROR, CLOSE_POLICY_VIOLATION)

    # -- CallerSocket and CallEnder -------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once the socket is closing or closed."""
        return self._closing

    def send(self, message: bytes, *, binary: bool = False) -> bool:
        """Queue one message on the socket; False once it is closing."""
        transport = self._transport
        if self._closing or transport is None:
            return False
        # The backlog is looked at only once the transport paused writing (its buffer is
        # past the high-water mark): not on every message.
        if (
            self._paused
            and transport.underlying_transport.get_write_buffer_size() > self._max_backlog
        ):
            count_refused(RefusalReason.BACKLOG)
            log.warning("media socket peer stopped reading", extra={"provider": self._name})
            self.end(EndReason.ERROR, CLOSE_POLICY_VIOLATION)
            return False
        transport.send(_BIN if binary else _TEXT, message)
        self._count_out()
        return True

    def pause_writing(self) -> None:
        """The socket's write buffer passed its high-water mark (flow control)."""
        self._paused = True

    def resume_writing(self) -> None:
        """The write buffer drained below its low-water mark."""
        self._paused = False

    def end(self, reason: EndReason, code: int = 1000) -> None:
        """Close the socket from our side; the call ends with ``reason``."""
        if self._end_reason is None:
            self._end_reason = reason
        self._close(code)

    def _close(self, code: int) -> None:
        if self._closing:
            return
        self._closing = True
        transport = self._transport
        if transport is not None:
            transport.send_close(WSCloseCode(code))
            transport.disconnect()

    # -- the end ----------------------------------------------------------------------------

    async def _finish(self) -> None:
        try:
            lane = self._lane_task
            if lane is not None:  # a start being verified completes first: its end follows it
                with contextlib.suppress(Exception):
                    await asyncio.shield(lane)
            reason = self._end_reason
            if reason is None:
                reason = (
                    EndReason.TRANSFERRED if self._call.transferring else EndReason.CALLER_HANGUP
                )
            await self._call.finish(reason)
        except Exception:
            log.exception("media call teardown failed", extra={"provider": self._name})
        finally:
            if self.done is not None and not self.done.done():
                self.done.set_result(None)
            self._on_done(self)
