"""One media WebSocket: the bridge between a provider's stream and the call's subjects.

Caller side (the WebSocket, this task): ``start`` → ``call.started``; audio →
``vb.audio.<call>.in``; echoed marks → ``vb.audio.<call>.played``; keys →
``dtmf.received``; ``stop`` or a closed socket → ``call.ended``. Agent side
(raw nats-py subscriptions, their own tasks): ``vb.audio.<call>.out`` → media
messages and marks; ``vb.ctl.<call>.*`` → clear, hang-up.

This is the hot path (~50 messages per second per call each way): no
FastStream, no pydantic per outbound frame, one dict of headers per inbound
frame. Bad provider messages are counted and ignored; they never end a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from voicebus.contracts import subjects
from voicebus.contracts.audio import PlaybackMark, decode_frame, encode_headers
from voicebus.contracts.commands import Clear, HangUp, SendDtmf, Transfer, parse_control
from voicebus.contracts.errors import InvalidAudioFrameError
from voicebus.contracts.events import EndReason, ErrorCode
from voicebus.contracts.ids import new_id
from voicebus.gateway.call_events import call_ended, call_error, call_started, dtmf_received
from voicebus.gateway.calls import EchoOutcome, InboundClock, PlaybackTracker
from voicebus.gateway.context import Gateway
from voicebus.gateway.live import AudioChunker, LiveControl, tone_chunks
from voicebus.gateway.metrics import IgnoreReason, count_ignored
from voicebus.gateway.parameters import CallIdentity, InvalidStreamParametersError, from_parameters
from voicebus.gateway.providers.base import (
    BinaryStreamCodec,
    CallEventRelay,
    DtmfIn,
    Ignored,
    MarkPlayed,
    MediaIn,
    Provider,
    StreamEvent,
    StreamStart,
    StreamStop,
)
from voicebus.runtime.logs import pii

log = logging.getLogger(__name__)

_GATEWAY_VERBS = (
    subjects.CtlVerb.CLEAR,
    subjects.CtlVerb.HANGUP,
    subjects.CtlVerb.TRANSFER,
    subjects.CtlVerb.DTMF,
)

CLOSE_POLICY_VIOLATION = 1008
CLOSE_SERVICE_RESTART = 1012
_HANGUP_POLL_S = 0.05
_OVERSIZE = Ignored(IgnoreReason.OVERSIZE)
_BINARY = Ignored(IgnoreReason.BINARY)


class MediaSession:
    """Bridges one provider media WebSocket to the bus for the call it starts.

    Args:
        gateway: settings and the bus.
        provider: the provider speaking on this socket.
        websocket: the socket, not yet accepted.
    """

    def __init__(self, gateway: Gateway, provider: Provider, websocket: WebSocket) -> None:
        self._gw = gateway
        self._provider = provider.name
        self._ws = websocket
        self._codec = provider.codec()
        self._rate = self._codec.sample_rate
        # Where the provider wants larger messages, marks fall on message boundaries.
        chunk_frames = -(-provider.out_chunk_bytes // (self._rate // 25))
        self._tracker = PlaybackTracker(max(gateway.settings.mark_every_frames, chunk_frames))
        self._chunker = AudioChunker(provider.out_chunk_bytes)
        self._control = LiveControl(gateway, provider)
        self._provider_call_id: str | None = None
        self._clock = InboundClock()
        self._max_chars = gateway.settings.ws_max_message_bytes
        self._call: CallIdentity | None = None
        self._audio_in = self._played = ""
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._socket_done = False
        self._end_reason: EndReason | None = None
        self._started_at = 0.0
        self._last_audio_at = 0.0
        self._bad_frames = 0

    async def run(self) -> None:
        """Accept the socket and bridge it until either side ends the call."""
        await self._ws.accept()
        reason = EndReason.ERROR
        try:
            reason = await self._receive()
        finally:
            await self._teardown(reason)

    # -- caller side ----------------------------------------------------------

    async def _receive(self) -> EndReason:
        receive, parse, max_chars = self._ws.receive, self._codec.parse, self._max_chars
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self._socket_done = True
                code = message.get("code")
                return (
                    EndReason.GATEWAY_LOST
                    if code == CLOSE_SERVICE_RESTART
                    else EndReason.CALLER_HANGUP
                )
            text = message.get("text")
            if text is not None:
                event = parse(text) if len(text) <= max_chars else _OVERSIZE
            else:
                event = self._parse_binary(message.get("bytes"))
            if type(event) is MediaIn:
                try:
                    await self._on_media(event)
                except nats.errors.OutboundBufferLimitError:
                    # NATS unreachable long enough to fill the client's buffer: this
                    # frame is lost, the call is not (it resumes once NATS is back).
                    self._ignore(IgnoreReason.BUS_UNAVAILABLE)
            elif await self._dispatch(event):
                return EndReason.CALLER_HANGUP

    def _parse_binary(self, data: bytes | None) -> StreamEvent:
        codec = self._codec
        if data is None or not isinstance(codec, BinaryStreamCodec):
            return _BINARY
        return codec.parse_bytes(data) if len(data) <= self._max_chars else _OVERSIZE

    async def _dispatch(self, event: StreamEvent) -> bool:
        """Handle a non-media event; True when the stream is over."""
        match event:
            case StreamStart():
                await self._on_start(event)
                return self._closing
            case MarkPlayed():
                await self._on_mark(event)
            case DtmfIn():
                await self._on_dtmf(event)
            case StreamStop():
                return True
            case Ignored():
                self._ignore(event.reason)
        return False

    async def _on_media(self, event: MediaIn) -> None:
        if self._call is None:
            self._ignore(IgnoreReason.BEFORE_START)
            return
        pcm, frame_bytes = event.pcm, self._rate // 25
        if len(pcm) <= frame_bytes:
            duration_ms = len(pcm) * 500 // self._rate
            seq, ts_ms = self._clock.stamp(event.seq, event.ts_ms, duration_ms)
            headers = encode_headers(self._rate, seq, ts_ms)
            await self._gw.nc.publish(self._audio_in, pcm, headers=headers)
            return
        ts: int | None = event.ts_ms  # a longer chunk (Exotel: 100 ms) goes out as 20 ms frames
        for start in range(0, len(pcm), frame_bytes):
            piece = pcm[start : start + frame_bytes]
            seq, ts_ms = self._clock.stamp(None, ts, len(piece) * 500 // self._rate)
            ts = None
            headers = encode_headers(self._rate, seq, ts_ms)
            await self._gw.nc.publish(self._audio_in, piece, headers=headers)

    async def _on_start(self, event: StreamStart) -> None:
        if self._call is not None:
            self._ignore(IgnoreReason.DUPLICATE_START)
            return
        settings = self._gw.settings
        # Providers whose start message cannot carry our parameters get them in the
        # stream URL's query; the token signs every parameter wherever it came from.
        params = {**self._ws.query_params, **event.parameters}
        try:
            call = from_parameters(
                params, self._gw.stream_key, time.time(), settings.stream_token_ttl_s
            )
        except InvalidStreamParametersError as err:
            await self._refuse_start(str(err))
            return
        self._codec.bind(event)
        self._rate = self._codec.sample_rate  # a codec may learn its format from the start
        self._call = call
        self._provider_call_id = event.provider_call_id
        self._audio_in = subjects.audio_in(call.call_id)
        self._played = subjects.audio_played(call.call_id)
        nc = self._gw.nc
        # Subscribed before call.started: media may answer it with audio at once.
        self._subs.append(await nc.subscribe(subjects.audio_out(call.call_id), cb=self._on_audio))
        # Only the verbs the gateway owns: ``say`` belongs to media, and the orchestrator's
        # delivery check for it relies on media being its only subscriber.
        for verb in _GATEWAY_VERBS:
            subject = subjects.ctl(call.call_id, verb)
            self._subs.append(await nc.subscribe(subject, cb=self._on_control))
        if isinstance(self._codec, CallEventRelay):  # core NATS: only while the call runs
            events = subjects.evt_filter(call.tenant_id, call.call_id)
            self._subs.append(await nc.subscribe(events, cb=self._on_call_event))
        self._started_at = time.monotonic()
        gw = self._gw
        await gw.hold(call.call_id, self._lost)
        await gw.publish(
            call_started(
                call, self._provider, event, self._rate, gw.source, gw.settings.instance_id
            )
        )
        log.info("call started", extra={"call_id": call.call_id, "provider": self._provider})

    async def _refuse_start(self, why: str) -> None:
        self._ignore(IgnoreReason.UNAUTHORIZED_START)
        log.warning("media stream refused", extra={"provider": self._provider, "why": why})
        gw = self._gw
        message = f"{self._provider}: media stream refused: {why}"
        await gw.publish(
            call_error(
                gw.settings.default_tenant,
                new_id(),
                gw.source,
                ErrorCode.SIGNATURE_INVALID,
                message,
                security=True,
            )
        )
        await self._close(EndReason.ERROR, CLOSE_POLICY_VIOLATION)

    async def _on_mark(self, event: MarkPlayed) -> None:
        outcome = self._tracker.echoed(event.name)
        if isinstance(outcome, PlaybackMark):
            try:
                await self._gw.nc.publish(self._played, b"", headers=outcome.headers())
            except nats.errors.OutboundBufferLimitError:
                self._ignore(IgnoreReason.BUS_UNAVAILABLE)
        elif outcome is EchoOutcome.UNKNOWN:
            self._ignore(IgnoreReason.UNKNOWN_MARK)

    async def _on_dtmf(self, event: DtmfIn) -> None:
        call = self._call
        if call is None:
            self._ignore(IgnoreReason.BEFORE_START)
            return
        try:
            dtmf = dtmf_received(call, event.digits, self._gw.source)
        except ValidationError:
            self._ignore(IgnoreReason.INVALID_MESSAGE)
            return
        await self._gw.publish(dtmf)
        log.info("dtmf received", extra={"call_id": call.call_id, **pii(digits=event.digits)})

    # -- agent side -----------------------------------------------------------

    async def _on_audio(self, msg: Msg) -> None:
        if self._closing:
            return
        try:
            frame = decode_frame(msg.data, msg.headers)
        except InvalidAudioFrameError:
            self._bad_frame()
            return
        if frame.sample_rate != self._rate:
            self._bad_frame()
            return
        self._last_audio_at = time.monotonic()
        tracker = self._tracker
        if not tracker.admit(frame):
            return
        pcm = self._chunker.push(frame.pcm, flush=frame.last)
        if pcm is not None and not await self._send(self._codec.media(pcm)):
            return
        name = tracker.sent(frame)
        if name is not None:
            await self._send_mark(name)

    async def _send_mark(self, name: str) -> None:
        pcm = self._chunker.take()  # the audio a mark covers goes first
        if pcm is None or await self._send(self._codec.media(pcm)):
            await self._send(self._codec.mark(name))

    def _bad_frame(self) -> None:
        self._bad_frames += 1
        if self._bad_frames == 1:  # once per call: a broken producer sends 50 per second
            call_id = self._call.call_id if self._call else None
            log.warning("invalid agent audio frame dropped", extra={"call_id": call_id})

    async def _on_control(self, msg: Msg) -> None:
        if self._closing:
            return
        try:
            command = parse_control(msg.data)
        except ValidationError as err:
            log.warning("invalid control command", extra={"errors": err.error_count()})
            return
        match command:
            case Clear():
                # Marks echoed from here on are for dropped audio; a mark whose audio
                # played just before the provider got the clear is dropped too (the
                # caller is reported to have heard slightly less, never more).
                self._tracker.clear(command.data.utterance_id)
                self._chunker.clear()
                await self._send(self._codec.clear())
            case HangUp():
                self._spawn(self._hang_up(command))
            case Transfer():
                self._spawn(self._transfer(command))
            case SendDtmf():
                self._spawn(self._send_dtmf(command))

    async def _on_call_event(self, msg: Msg) -> None:
        if self._closing or not isinstance(self._codec, CallEventRelay):
            return
        message = self._codec.relay(msg.data)
        if message is not None:
            await self._send(message)

    async def _hang_up(self, command: HangUp) -> None:
        if command.data.after_playback:
            await self._drain()
        await self._close(command.data.reason)

    async def _drain(self) -> None:
        """Wait until the caller heard the agent's audio, within the drain timeout.

        Done when every mark sent was echoed and no agent audio arrived for the
        quiet period (counted from the hang-up too: the goodbye's first frame may
        still be in text-to-speech).
        """
        settings, tracker = self._gw.settings, self._tracker
        now = time.monotonic()
        deadline, asked_at = now + settings.hangup_drain_timeout_s, now
        while now < deadline and not self._closing:
            idle_s = now - max(self._last_audio_at, asked_at)
            name = tracker.flush() if idle_s >= 2 * _HANGUP_POLL_S else None
            if name is not None:
                await self._send_mark(name)
            elif tracker.all_played and idle_s >= settings.hangup_quiet_s:
                return
            await asyncio.sleep(_HANGUP_POLL_S)
            now = time.monotonic()
        if not self._closing:
            call_id = self._call.call_id if self._call else None
            log.warning("hang-up before playback confirmed", extra={"call_id": call_id})

    async def _transfer(self, command: Transfer) -> None:
        if self._call is None:
            return
        self._end_reason = EndReason.TRANSFERRED  # the provider may end the stream at once
        if not await self._control.transfer(self._call, self._provider_call_id, command):
            self._end_reason = None

    async def _send_dtmf(self, command: SendDtmf) -> None:
        """Through the provider's API where it can; else as in-band tones on the stream."""
        call = self._call
        if call is None or await self._control.send_dtmf(call, self._provider_call_id, command):
            return
        for pcm in tone_chunks(command.data.digits, self._rate, self._chunker.min_bytes):
            if not await self._send(self._codec.media(pcm)):
                return
        log.info("dtmf sent in-band", extra={"call_id": call.call_id})

    # -- plumbing ---------------------------------------------------------------

    async def _send(self, message: str | bytes) -> bool:
        if self._closing:
            return False
        try:
            if isinstance(message, str):
                await self._ws.send_text(message)
            else:
                await self._ws.send_bytes(message)
        except (WebSocketDisconnect, WebSocketDisconnected):
            self._closing = True
            return False
        return True

    async def _lost(self) -> None:
        """The platform ended the call while this gateway was away: hang up the caller."""
        await self._close(EndReason.GATEWAY_LOST)

    async def _close(self, reason: EndReason, code: int = 1000) -> None:
        """End the call from our side: the provider hangs up when its stream closes."""
        if self._closing:
            return
        self._closing = True
        self._end_reason = reason
        await self._close_socket(code)

    async def _close_socket(self, code: int) -> None:
        if self._socket_done:
            return
        self._socket_done = True
        # The caller's side may have closed meanwhile; the receive loop sees that.
        with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
            await self._ws.close(code=code)

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ignore(self, reason: IgnoreReason) -> None:
        count_ignored(self._provider, reason)

    async def _teardown(self, reason: EndReason) -> None:
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                log.warning("unsubscribe failed", exc_info=True)
        await self._close_socket(1000)  # after stop: a clean close, not a dropped connection
        call = self._call
        if call is None:
            return
        duration_s = time.monotonic() - self._started_at
        reason = self._end_reason or reason
        await self._gw.publish(call_ended(call, reason, duration_s, self._gw.source))
        await self._gw.let_go(call.call_id)
        log.info("call ended", extra={"call_id": call.call_id, "reason": reason.value})
