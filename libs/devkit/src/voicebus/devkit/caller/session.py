"""A simulated caller on a provider's media stream; :class:`TwilioCaller` places it via Twilio.

>>> async with TwilioCaller(gateway, token, "demo") as call:     # doctest: +SKIP
...     await call.wait_for_agent_silence()                      # the greeting
...     await call.say_text("Hi, where is my order 1234?")
...     await call.wait_for_agent_silence()
...     result = await call.hang_up()
>>> result.turns[0].latency_ms                                   # doctest: +SKIP

One clock task ticks every 20 ms of real time: it sends the next 20 ms of caller
audio (a line being spoken, else silence) as a ``media`` message, plays 20 ms of
the playout buffer, echoes the marks that playback reached, and records both
sides. A receive task feeds the playout buffer from the server's ``media``,
``mark`` and ``clear`` messages. The provider's wire format is a
:class:`~.protocol.CallerProtocol` (Twilio, Exotel, ...); :class:`StreamCaller`
also serves the stand-in carriers' callees, which answer outbound calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voicebus.devkit.caller import twilio
from voicebus.devkit.caller.audio import (
    FRAME_MS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    ms_to_samples,
    read_wav,
)
from voicebus.devkit.caller.errors import CallClosedError, CallerError
from voicebus.devkit.caller.lines import LineQueue
from voicebus.devkit.caller.playout import Playout
from voicebus.devkit.caller.protocol import (
    CallerProtocol,
    ProtocolError,
    ServerClear,
    ServerMark,
    ServerMedia,
)
from voicebus.devkit.caller.timeline import CallResult, Timeline, Turn
from voicebus.devkit.caller.voices import default_voice
from voicebus.devkit.caller.webhook import open_media_socket, post_inbound_webhook
from voicebus.engines.base import TTSEngine

DEFAULT_FROM: Final = "+15005550006"
DEFAULT_TO: Final = "+15005550001"
_TICK_S: Final = FRAME_MS / 1000
_MAX_LAG_S: Final = 1.0


@dataclass
class _Counters:
    clears: int = 0
    marks_received: int = 0
    marks_echoed: list[str] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)


class StreamCaller:
    """One simulated caller on a media WebSocket, speaking ``protocol``.

    Args:
        protocol: the provider's stream messages.
        voice: the TTS engine for :meth:`say_text`; the local ``hibari`` engine by default.
        on_turn_answered: called when a line's first agent audio is played.
        timeout: bound on the WebSocket handshake, in seconds.
    """

    def __init__(
        self,
        protocol: CallerProtocol,
        *,
        voice: TTSEngine | None = None,
        on_turn_answered: Callable[[Turn], None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.protocol = protocol
        self.agent = ""
        self.parameters: dict[str, str] = {}
        self._voice = voice
        self._on_turn_answered = on_turn_answered
        self._timeout = timeout
        self._ws: ClientConnection | None = None
        self._send_lock = asyncio.Lock()
        self._playout = Playout()
        self._timeline = Timeline()
        self._counters = _Counters()
        self._lines = LineQueue()
        self._changed = asyncio.Condition()
        self._closed = asyncio.Event()
        self._hanging_up = False
        self._server_closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._chunk: list[bytes] = []

    @property
    def account_sid(self) -> str:
        """The provider's account id."""
        return self.protocol.ids.account_sid

    @property
    def call_sid(self) -> str:
        """The provider's call id."""
        return self.protocol.ids.call_sid

    @property
    def stream_sid(self) -> str:
        """The provider's stream id."""
        return self.protocol.ids.stream_sid

    async def connect(self, url: str, parameters: Mapping[str, str]) -> None:
        """Open the media socket at ``url``, send the opening messages, start talking.

        Raises:
            CallerError: the socket could not be opened, or closed at once.
        """
        self.parameters = dict(parameters)
        self._ws = await open_media_socket(url, self._timeout)
        try:
            for message in self.protocol.opening(parameters):
                await self._send(message)
        except ConnectionClosed as err:
            raise CallerError("the gateway closed the media socket at its start") from err
        self._tasks = [
            asyncio.create_task(self._receive(), name="caller-receive"),
            asyncio.create_task(self._clock(), name="caller-clock"),
        ]

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Place the call and :meth:`connect` (subclasses; a callee is connected by its carrier)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.hang_up()

    @property
    def call_id(self) -> str | None:
        """The platform's call id, from the ``call_id`` stream parameter."""
        return self.parameters.get("call_id")

    @property
    def closed(self) -> bool:
        """The media socket is closed (by either side)."""
        return self._closed.is_set()

    @property
    def server_closed(self) -> bool:
        """The server closed the media socket: the agent hung up."""
        return self._server_closed

    @property
    def now_ms(self) -> float:
        """Milliseconds of media sent so far (the stream's clock)."""
        return self._timeline.now_ms

    async def hang_up(self) -> CallResult:
        """Send ``stop`` and close the socket (unless the server already did); the result."""
        if self._ws is not None and not self._closed.is_set():
            self._hanging_up = True
            await self._stop_tasks()
            stop = self.protocol.stop()
            with contextlib.suppress(ConnectionClosed):
                if stop is not None:
                    await self._send(stop)
            await self._ws.close()
        await self._stop_tasks()
        await self._set_closed()
        return self.result()

    async def _stop_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def result(self) -> CallResult:
        """What the call observed so far."""
        t = self._timeline
        return CallResult(
            call_id=self.call_id,
            call_sid=self.call_sid,
            stream_sid=self.stream_sid,
            account_sid=self.account_sid,
            agent=self.agent,
            stream_parameters=dict(self.parameters),
            turns=list(t.turns),
            heard_audio=bytes(t.heard),
            said_audio=bytes(t.said),
            heard_spans=list(t.heard_spans),
            clears_received=self._counters.clears,
            marks_received=self._counters.marks_received,
            marks_echoed=list(self._counters.marks_echoed),
            server_closed=self._server_closed,
            protocol_errors=list(self._counters.protocol_errors),
            duration_ms=t.now_ms,
        )

    # -- speaking -----------------------------------------------------------

    async def synthesize(self, text: str) -> bytes:
        """``text`` as PCM16LE 8 kHz with the caller's voice."""
        if self._voice is None:
            self._voice = default_voice()
        chunks = [chunk async for chunk in self._voice.synthesize(text, SAMPLE_RATE)]
        return b"".join(chunks)

    async def say_text(self, text: str) -> Turn:
        """Synthesize ``text`` and speak it; returns once its last frame is sent."""
        return await self.say_pcm(await self.synthesize(text), text=text)

    async def say_wav(self, path: Path) -> Turn:
        """Speak a WAV file (resampled to 8 kHz mono)."""
        pcm = await asyncio.to_thread(read_wav, path)
        return await self.say_pcm(pcm, text=None)

    async def say_pcm(self, pcm: bytes, text: str | None = None) -> Turn:
        """Speak PCM16LE 8 kHz audio after any line already queued.

        Returns:
            The turn, once the line's last frame has been sent; its latency is
            filled in when the agent's answer is played.

        Raises:
            CallClosedError: the call ended before the line was fully spoken.
        """
        if self._closed.is_set():
            raise CallClosedError("the call has ended")
        return await self._lines.add(pcm, text)

    async def send_dtmf(self, digit: str) -> None:
        """Send a ``dtmf`` message, as when the caller presses a key."""
        await self._send(self.protocol.dtmf(digit))

    # -- waiting ------------------------------------------------------------

    async def wait_for_agent_silence(
        self, quiet_ms: float = 1200, timeout: float = 30.0, *, require_audio: bool = True
    ) -> bool:
        """Wait until the agent has spoken since the latest line and then fell silent.

        Args:
            quiet_ms: how long nothing must play before the agent counts as done.
            timeout: give up after this many seconds.
            require_audio: if False, ``quiet_ms`` of silence is enough even when the
                agent said nothing.

        Returns:
            True when the condition was met; False on timeout or when the call closed.
        """
        since = self._timeline.last_speech_end_ms

        def done() -> bool:
            last = self._timeline.last_heard_ms
            if self._playout.pending_samples:
                return False
            if last is not None and last > since:
                return self.now_ms - last >= quiet_ms
            return not require_audio and self.now_ms - since >= quiet_ms

        return await self._wait_until(done, timeout)

    async def wait_for_agent_audio(self, ms: float = 20.0, timeout: float = 30.0) -> bool:
        """Wait until ``ms`` of agent audio have played since the latest line ended."""
        base = self._timeline.heard_samples
        need = ms_to_samples(ms)
        return await self._wait_until(lambda: self._timeline.heard_samples - base >= need, timeout)

    async def wait_closed(self, timeout: float = 30.0) -> bool:
        """Wait until the socket closes (e.g. the agent hangs up)."""
        return await self._wait_until(lambda: False, timeout) or self._closed.is_set()

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: predicate() or self._closed.is_set()), timeout
                )
            except TimeoutError:
                return False
        return predicate()

    # -- the two tasks ------------------------------------------------------

    async def _clock(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        tick = 0
        try:
            while True:
                await self._tick()
                tick += 1
                delay = started + tick * _TICK_S - loop.time()
                if delay < -_MAX_LAG_S:  # the process stalled: resume at real time
                    started, tick = loop.time(), 0
                    delay = 0.0
                await asyncio.sleep(max(delay, 0.0))
        except ConnectionClosed:
            if not self._hanging_up:
                self._server_closed = True
            await self._set_closed()

    async def _tick(self) -> None:
        pcm = self._lines.next_frame(self._timeline, self._playout)
        self._chunk.append(pcm)
        per_chunk = self.protocol.frames_per_chunk
        if len(self._chunk) >= per_chunk:
            first_tick = self._timeline.ticks + 1 - len(self._chunk)
            message = self.protocol.media(
                b"".join(self._chunk), first_tick // per_chunk + 1, first_tick * FRAME_MS
            )
            self._chunk.clear()
            await self._send(message)
        played = self._playout.play(FRAME_SAMPLES)
        answered = self._timeline.tick(pcm, played)
        self._lines.frame_sent()
        await self._echo(played.marks)
        for turn in answered:
            if self._on_turn_answered is not None:
                self._on_turn_answered(turn)
        async with self._changed:
            self._changed.notify_all()

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                await self._handle(raw)
        except ConnectionClosed:
            pass
        if not self._hanging_up:
            self._server_closed = True
        await self._set_closed()

    async def _handle(self, raw: str | bytes) -> None:
        try:
            message = self.protocol.parse(raw)
        except ProtocolError as err:
            self._counters.protocol_errors.append(str(err))
            return
        match message:
            case ServerMedia(pcm=pcm):
                self._playout.push_audio(pcm)
            case ServerMark(name=name):
                self._counters.marks_received += 1
                await self._echo(self._playout.push_mark(name))
            case ServerClear():
                self._counters.clears += 1
                dropped = self._playout.clear()
                # Twilio echoes the marks a clear dropped; Plivo-style providers answer
                # with one acknowledgement instead (their protocols have ``cleared``).
                cleared = getattr(self.protocol, "cleared", None)
                if cleared is None:
                    await self._echo(dropped)
                else:
                    for message in cleared(dropped):
                        await self._send(message)

    async def _echo(self, names: list[str]) -> None:
        for name in names:
            await self._send(self.protocol.mark(name))
            self._counters.marks_echoed.append(name)

    async def _set_closed(self) -> None:
        self._closed.set()
        self._lines.abandon()
        async with self._changed:
            self._changed.notify_all()

    # -- sending ------------------------------------------------------------

    async def _send(self, message: str) -> None:
        assert self._ws is not None
        async with self._send_lock:
            await self._ws.send(message)


class TwilioCaller(StreamCaller):
    """One simulated inbound Twilio call: signed webhook, then the stream its TwiML names.

    Args:
        gateway_url: where the gateway listens, e.g. ``http://127.0.0.1:8080``.
        auth_token: the Twilio auth token the gateway checks signatures with.
        agent: the agent id in the webhook path.
        context: call-context variables, sent as ``ctx_<name>=<value>`` in the webhook
            URL's query string (Twilio signs the full URL, query included).
        public_url: the base URL the gateway validates signatures against
            (``VB_GATEWAY_PUBLIC_URL``); the gateway URL when omitted.
        from_number: the caller's number.
        to_number: the number called.
        voice: the TTS engine for :meth:`say_text`; the local ``hibari`` engine by default.
        on_turn_answered: called when a line's first agent audio is played.
        timeout: bound on the webhook request and the WebSocket handshake, in seconds.
    """

    def __init__(
        self,
        gateway_url: str,
        auth_token: str,
        agent: str,
        context: Mapping[str, str] | None = None,
        *,
        public_url: str | None = None,
        from_number: str = DEFAULT_FROM,
        to_number: str = DEFAULT_TO,
        voice: TTSEngine | None = None,
        on_turn_answered: Callable[[Turn], None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(
            twilio.TwilioProtocol(),
            voice=voice,
            on_turn_answered=on_turn_answered,
            timeout=timeout,
        )
        self.gateway_url = gateway_url.rstrip("/")
        self.public_url = (public_url or gateway_url).rstrip("/")
        self.agent = agent
        self.context = dict(context or {})
        self.from_number = from_number
        self.to_number = to_number
        self.answer: twilio.TwimlAnswer | None = None
        self._auth_token = auth_token

    async def start(self) -> None:
        """Post the signed webhook, open the media socket, send ``connected`` and ``start``.

        Raises:
            CallRejectedError: the webhook was refused or answered without a stream.
            CallerError: the gateway could not be reached.
        """
        params = twilio.webhook_params(
            account_sid=self.account_sid,
            call_sid=self.call_sid,
            from_number=self.from_number,
            to_number=self.to_number,
        )
        self.answer = await post_inbound_webhook(
            gateway_url=self.gateway_url,
            public_url=self.public_url,
            auth_token=self._auth_token,
            agent=self.agent,
            context=self.context,
            params=params,
            timeout=self._timeout,
        )
        stream = self.answer.stream
        assert stream is not None  # post_inbound_webhook refuses an answer without one
        url = twilio.media_socket_url(stream.url, self.public_url, self.gateway_url)
        await self.connect(url, stream.parameters)
