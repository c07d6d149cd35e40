"""One call on a media WebSocket: its start, the caller's keys, its end.

Start: the stream parameters (the provider's start message, or the URL's query
where the provider cannot carry them) must carry a token signed for *this*
provider's media stream (``parameters.stream_purpose``), unexpired, and the call
must not have had a media session yet (``stream_claims``): a replayed or
cross-purpose token, or a second socket for a live call, is refused with a
security ``call.error`` and the socket closed (1008) — the call it names is not
touched, and no ``call.ended`` is published for it. Then the call's parts are
built, its subjects subscribed (before ``call.started``: media may answer at
once), its lease taken and ``call.started`` published.

End: control tasks cancelled, subscriptions dropped, ``call.ended`` stored,
the lease released.

Tracing: a started call is one trace, rooted at the ``call`` span opened here
and ended with the call. The call's subscriptions are made and its events
published inside that span, so the trace context travels in the headers of
everything that follows (audio frames excepted: they carry no headers beyond
their format).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import nats.errors
from nats.aio.subscription import Subscription
from opentelemetry import trace
from pydantic import ValidationError

from voicebus.contracts import subjects
from voicebus.contracts.events import EndReason, ErrorCode
from voicebus.contracts.ids import new_id
from voicebus.gateway import metrics
from voicebus.gateway.call_events import (
    call_ended,
    call_error,
    call_started,
    dtmf_received,
    masked_dtmf,
)
from voicebus.gateway.calls import PlaybackTracker
from voicebus.gateway.context import Gateway
from voicebus.gateway.live import AudioChunker, LiveControl
from voicebus.gateway.metrics import IgnoreReason, count_ignored
from voicebus.gateway.parameters import (
    CallIdentity,
    InvalidStreamParametersError,
    from_parameters,
    stream_purpose,
)
from voicebus.gateway.providers.base import (
    CallEventRelay,
    DtmfIn,
    Provider,
    StreamCodec,
    StreamStart,
)
from voicebus.gateway.stream.bus_to_caller import BusToCaller
from voicebus.gateway.stream.call_control import CallControl
from voicebus.gateway.stream.caller_to_bus import CallerToBus
from voicebus.gateway.stream.ports import CallEnder, CallerSocket, FrameSink
from voicebus.gateway.stream.stream_claims import Claims
from voicebus.runtime.logs import pii

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

CLOSE_POLICY_VIOLATION = 1008
_GATEWAY_VERBS = (
    subjects.CtlVerb.CLEAR,
    subjects.CtlVerb.HANGUP,
    subjects.CtlVerb.TRANSFER,
    subjects.CtlVerb.DTMF,
    subjects.CtlVerb.KEYPAD,
)


@dataclass(frozen=True, slots=True)
class StreamHub:
    """What every media WebSocket of this process shares.

    Attributes:
        gateway: settings, the bus, leases, events.
        frames: the frame publisher (audio in, playback marks).
        claims: one media session per call, across gateway instances.
    """

    gateway: Gateway
    frames: FrameSink
    claims: Claims


@dataclass(slots=True)
class LiveParts:
    """The three parts of a started call."""

    inbound: CallerToBus
    outbound: BusToCaller
    control: CallControl


class MediaCall:
    """The call carried by one media WebSocket.

    Args:
        hub: what the process shares.
        provider: the provider speaking on the socket.
        codec: the socket's codec.
        socket: the caller's socket (also what ends the call).
        query: the upgrade request's query parameters.
    """

    def __init__(
        self,
        hub: StreamHub,
        provider: Provider,
        codec: StreamCodec,
        socket: CallerSocket,
        ender: CallEnder,
        query: Mapping[str, str],
    ) -> None:
        self._hub = hub
        self._gw = hub.gateway
        self._provider = provider
        self._codec = codec
        self._socket = socket
        self._ender = ender
        self._query = query
        self.identity: CallIdentity | None = None
        self.parts: LiveParts | None = None
        self._subs: list[Subscription] = []
        self._started_at = 0.0
        self._span: trace.Span = trace.INVALID_SPAN

    @property
    def transferring(self) -> bool:
        """A transfer was ordered (the stream's end is then the transfer's)."""
        return self.parts is not None and self.parts.control.transferring

    async def start(self, event: StreamStart) -> bool:
        """Verify and start the call; False when refused (the socket is then closed)."""
        gw, settings = self._gw, self._gw.settings
        params = {**self._query, **event.parameters}
        purpose = stream_purpose(self._provider.name)
        try:
            call = from_parameters(
                params, gw.stream_key, time.time(), settings.stream_token_ttl_s, purpose=purpose
            )
        except InvalidStreamParametersError as err:
            await self._refuse(str(err))
            return False
        if not await self._hub.claims.claim(call.call_id, settings.instance_id):
            await self._refuse(
                "a media stream for this call already started (tokens are single-use)"
            )
            return False
        self._codec.bind(event)
        self.identity = call
        self._span = tracer.start_span(
            "call",
            kind=trace.SpanKind.SERVER,
            attributes={
                "voicebus.call_id": call.call_id,
                "voicebus.tenant_id": call.tenant_id,
                "voicebus.provider": self._provider.name,
                "voicebus.direction": call.direction.value,
            },
        )
        with trace.use_span(self._span, end_on_exit=False):
            await self._go(call, event)
        return True

    async def _go(self, call: CallIdentity, event: StreamStart) -> None:
        gw, settings = self._gw, self._gw.settings
        self.parts = parts = self._build(call, event.provider_call_id)
        nc = gw.nc
        self._subs.append(
            await nc.subscribe(subjects.audio_out(call.call_id), cb=parts.outbound.on_audio)
        )
        # Only the verbs the gateway owns: ``say`` belongs to media, and the orchestrator's
        # delivery check for it relies on media being its only subscriber.
        for verb in _GATEWAY_VERBS:
            subject = subjects.ctl(call.call_id, verb)
            self._subs.append(await nc.subscribe(subject, cb=parts.control.on_control))
        if isinstance(self._codec, CallEventRelay):  # core NATS: only while the call runs
            events = subjects.evt_filter(call.tenant_id, call.call_id)
            self._subs.append(await nc.subscribe(events, cb=parts.outbound.on_call_event))
        self._started_at = time.monotonic()
        await gw.hold(call.call_id, self._lost)
        rate = self._codec.sample_rate
        await gw.publish(
            call_started(call, self._provider.name, event, rate, gw.source, settings.instance_id)
        )
        metrics.call_started(self._provider.name)
        log.info("call started", extra={"call_id": call.call_id, "provider": self._provider.name})

    def _build(self, call: CallIdentity, provider_call_id: str | None) -> LiveParts:
        settings, provider, codec = self._gw.settings, self._provider, self._codec
        rate = codec.sample_rate
        # Where the provider wants larger messages, marks fall on message boundaries.
        chunk_frames = -(-provider.out_chunk_bytes // (rate // 25))
        tracker = PlaybackTracker(max(settings.mark_every_frames, chunk_frames))
        chunker = AudioChunker(provider.out_chunk_bytes)
        inbound = CallerToBus(provider.name, call.call_id, rate, self._hub.frames, tracker)
        outbound = BusToCaller(call.call_id, codec, self._socket, tracker, chunker)
        control = CallControl(
            call,
            provider_call_id,
            rate,
            chunker.min_bytes,
            outbound,
            self._ender,
            LiveControl(self._gw, provider),
            drain_timeout_s=settings.hangup_drain_timeout_s,
            quiet_s=settings.hangup_quiet_s,
        )
        return LiveParts(inbound, outbound, control)

    async def _refuse(self, why: str) -> None:
        count_ignored(self._provider.name, IgnoreReason.UNAUTHORIZED_START)
        log.warning("media stream refused", extra={"provider": self._provider.name, "why": why})
        gw = self._gw
        message = f"{self._provider.name}: media stream refused: {why}"
        self._ender.end(EndReason.ERROR, CLOSE_POLICY_VIOLATION)
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

    async def dtmf(self, event: DtmfIn) -> None:
        """The caller pressed keys.

        While the keypad is masked (a sensitive collect-digits node), the real keys go to
        the call's orchestrator on ``vb.keys.<call>`` (core NATS, never stored) and the
        stored ``dtmf.received`` shows one ``*`` per key.
        """
        call = self.identity
        if call is None:
            count_ignored(self._provider.name, IgnoreReason.BEFORE_START)
            return
        try:
            dtmf = dtmf_received(call, event.digits, self._gw.source)
        except ValidationError:
            count_ignored(self._provider.name, IgnoreReason.INVALID_MESSAGE)
            return
        with trace.use_span(self._span, end_on_exit=False):
            if self.parts is not None and self.parts.control.keypad_masked:
                await self._gw.nc.publish(
                    subjects.keys(call.call_id), dtmf.model_dump_json().encode()
                )
                dtmf = masked_dtmf(dtmf)
            await self._gw.publish(dtmf)
        log.info("dtmf received", extra={"call_id": call.call_id, **pii(digits=event.digits)})

    async def _lost(self) -> None:
        """The platform ended the call while this gateway was away: hang up the caller."""
        self._ender.end(EndReason.GATEWAY_LOST)

    async def finish(self, reason: EndReason) -> None:
        """The socket is closed: stop the parts, store ``call.ended``, release the lease."""
        if self.parts is not None:
            await self.parts.control.stop()
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                log.warning("unsubscribe failed", exc_info=True)
        self._subs.clear()
        call = self.identity
        if call is None or self.parts is None:
            return
        duration_s = time.monotonic() - self._started_at
        gw = self._gw
        metrics.call_ended(self._provider.name, reason.value)
        with trace.use_span(self._span, end_on_exit=True):
            self._span.set_attribute("voicebus.end_reason", reason.value)
            await gw.publish(call_ended(call, reason, duration_s, gw.source))
        await gw.let_go(call.call_id)
        log.info("call ended", extra={"call_id": call.call_id, "reason": reason.value})
