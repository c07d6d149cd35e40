"""One claimed call: its subscriptions, its pipeline and its outlet.

Subscriptions come first, the moment the call is claimed, so that the greeting's
``ctl.say`` chunks and the first caller frames are not lost while the agent's
profile is fetched and the pipeline starts: until then they wait in bounded
buffers. Audio subscriptions are raw nats-py (~4 µs per message against ~58 µs
through FastStream). Malformed messages are counted and ignored; they never
end a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from opentelemetry.context import Context
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.vad.vad_analyzer import VADParams
from pydantic import ValidationError

from voicebus.contracts import subjects
from voicebus.contracts.audio import AudioFrame, PlaybackMark, decode_frame, decode_mark
from voicebus.contracts.commands import Say, SayData, parse_control
from voicebus.contracts.errors import InvalidAudioFrameError
from voicebus.contracts.events import (
    AMD_CONTEXT_KEY,
    CallStarted,
    Direction,
    ErrorCode,
    SupervisionTakenOverData,
)
from voicebus.contracts.rpc import AgentProfile
from voicebus.engines.fallback.incidents import Incident
from voicebus.engines.fallback.tts import FallbackTTS
from voicebus.media.agents import default_profile, fetch_profile
from voicebus.media.amd import MachineDetector
from voicebus.media.engine_set import EngineAccess, EngineSet, create_engines, create_tts
from voicebus.media.events import CallEvents
from voicebus.media.metrics import MALFORMED
from voicebus.media.models import SharedModels, smart_turn_on
from voicebus.media.operator_speech import OperatorSpeech
from voicebus.media.outlet import BusOutlet
from voicebus.media.pipeline import CallPipeline, PipelineConfig
from voicebus.media.settings import MediaSettings
from voicebus.media.take_overs import TakeOvers
from voicebus.media.voices import MakeVoice, Voices
from voicebus.runtime.service import Service
from voicebus.runtime.telemetry import extract_trace_context, sampled

log = logging.getLogger(__name__)

VAD_RATES = frozenset({8000, 16000})
"""Rates Silero VAD runs at; every provider voicebus speaks to sends 8 kHz."""

Feed = Callable[[CallPipeline], Awaitable[None]]


class CallSession:
    """Media's work on one call, from claim to end.

    Args:
        service: the running service.
        settings: media settings.
        models: the process's VAD and smart-turn models.
        call: the claimed call.
    """

    def __init__(
        self,
        service: Service,
        settings: MediaSettings,
        models: SharedModels,
        call: CallStarted,
        access: EngineAccess | None = None,
    ) -> None:
        self.call = call
        self._access = access or EngineAccess(allow_private_urls=settings.allow_private_engine_urls)
        self.call_id = call.call_id
        self._service = service
        self._settings = settings
        self._models = models
        self._rate = call.data.audio.sample_rate
        self._started_at = time.monotonic()
        source = f"media/{settings.instance_id}"
        self._events = CallEvents(call.tenant_id, call.call_id, source)
        self._outlet = BusOutlet(
            service.broker,
            service.nc,
            tenant_id=call.tenant_id,
            call_id=call.call_id,
            source=source,
        )
        self._audio_waiting: deque[AudioFrame] = deque(maxlen=settings.pending_frames)
        self._control_waiting: deque[Feed] = deque(maxlen=1000)
        self._subs: list[Subscription] = []
        self._built: CallPipeline | None = None
        self._pipeline: CallPipeline | None = None  # once started and caught up
        self._start_task: asyncio.Task[None] | None = None
        self._failed = False
        self._closed = False
        self._engines: EngineSet | None = None
        self._voices: Voices | None = None
        self._take_overs = TakeOvers(
            tenant_id=call.tenant_id,
            call_id=call.call_id,
            sample_rate=self._rate,
            start_speech=self._operator_speech,
        )

    async def open(self) -> None:
        """Subscribe to the call's subjects and start its pipeline in the background."""
        nc = self._service.nc
        self._subs = [
            await nc.subscribe(subjects.audio_in(self.call_id), cb=self._on_audio),
            await nc.subscribe(subjects.ctl(self.call_id, subjects.CtlVerb.SAY), cb=self._on_say),
            await nc.subscribe(subjects.audio_played(self.call_id), cb=self._on_mark),
        ]
        await self._take_overs.open(nc)
        self._start_task = asyncio.create_task(self._start(), name=f"media-start-{self.call_id}")

    async def close(self) -> None:
        """Unsubscribe, stop the pipeline, publish what is queued (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for sub in self._subs:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()
        self._subs = []
        task, self._start_task = self._start_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._take_overs.close()  # before the engines close: it uses the STT
        pipeline, self._built, self._pipeline = self._built, None, None
        if pipeline is not None:
            await pipeline.stop()
        engines, self._engines = self._engines, None
        if engines is not None:
            await engines.aclose()
        voices, self._voices = self._voices, None
        if voices is not None:
            await voices.aclose()
        self._audio_waiting.clear()
        self._control_waiting.clear()
        await self._outlet.close()

    # -- start-up -------------------------------------------------------------

    async def _start(self) -> None:
        try:
            pipeline = self._built = await self._build()
            if pipeline is None:
                self._failed = True
                return
            await pipeline.start()
        except Exception:  # the call goes on without media rather than taking the service down
            self._failed = True
            log.exception("media pipeline failed to start", extra={"call_id": self.call_id})
            error = self._events.error(ErrorCode.INTERNAL, "media pipeline failed", retryable=True)
            self._outlet.emit(error)
            return
        while self._control_waiting or self._audio_waiting:
            if self._control_waiting:
                await self._control_waiting.popleft()(pipeline)
            else:
                await pipeline.audio(self._audio_waiting.popleft())
        self._pipeline = pipeline  # no await since the buffers emptied: order is kept

    async def _build(self) -> CallPipeline | None:
        settings, call = self._settings, self.call
        if self._rate not in VAD_RATES:
            self._outlet.emit(
                self._events.error(
                    ErrorCode.MEDIA_PROTOCOL,
                    f"media supports 8000 or 16000 Hz audio, not {self._rate}",
                )
            )
            return None
        defaults = default_profile(call.data.agent_id, settings.default_stt, settings.default_tts)
        lookup = await fetch_profile(
            self._service.nc,
            call.tenant_id,
            call.data.agent_id,
            defaults,
            timeout_s=settings.agent_lookup_timeout_s,
        )
        if lookup.problem is not None:
            self._outlet.emit(self._events.error(*lookup.problem, retryable=True))
        profile = lookup.profile
        agent_id = profile.agent_id
        self._events = replace(self._events, redaction=profile.redaction)

        def report(incident: Incident) -> None:
            self._outlet.emit(self._events.engine(incident, agent_id))

        engines = self._engines = await create_engines(
            profile, call.tenant_id, self._access, report
        )
        for problem in engines.problems:
            self._outlet.emit(self._events.error(ErrorCode.ENGINE_ERROR, problem))
        self._voices = Voices(agent_id, engines.tts, self._voice_maker(defaults))
        turn = profile.turn
        vad = self._models.vad(
            VADParams(
                confidence=settings.vad_confidence,
                start_secs=turn.min_speech_ms / 1000,
                stop_secs=turn.vad_stop_ms / 1000,
                min_volume=settings.vad_min_volume,
            ),
            self._rate,
        )
        turn_analyzer = None
        if settings.smart_turn and smart_turn_on(turn, profile.stt.engine):
            stop_ms = turn.smart_turn_stop_ms or settings.smart_turn_stop_ms
            turn_analyzer = self._models.smart_turn(SmartTurnParams(stop_secs=stop_ms / 1000))
        config = PipelineConfig(
            sample_rate=self._rate,
            turn=turn,
            vad=vad,
            turn_analyzer=turn_analyzer,
            stt=engines.stt,
            tts=engines.tts,
            lead_ms=settings.lead_ms,
            frame_ms=call.data.audio.frame_ms,
            mark_grace_ms=settings.mark_grace_ms,
            preroll_ms=settings.preroll_ms,
            max_turn_ms=settings.max_turn_ms,
            language=profile.language,
            hold_timeout_s=settings.barge_in_hold_timeout_ms / 1000,
            amd=MachineDetector(self._rate) if wants_amd(call, settings) else None,
            early_check=settings.smart_turn_early,
            voices=self._voices,
        )
        return CallPipeline(config, self._outlet, self._events, self._started_at)

    def _voice_maker(self, defaults: AgentProfile) -> MakeVoice:
        """Creates the TTS of another agent of the tenant (a handoff), from its profile."""

        async def make(agent_id: str) -> FallbackTTS | None:
            lookup = await fetch_profile(
                self._service.nc,
                self.call.tenant_id,
                agent_id,
                defaults,
                timeout_s=self._settings.agent_lookup_timeout_s,
            )
            if lookup.problem is not None:  # keep the current voice rather than a default one
                self._outlet.emit(self._events.error(*lookup.problem, retryable=True))
                return None

            def report(incident: Incident) -> None:
                self._outlet.emit(self._events.engine(incident, agent_id))

            problems: list[str] = []
            tts = await create_tts(lookup.profile, self.call.tenant_id, self._access, report,
                                   problems)  # fmt: skip
            for problem in problems:
                self._outlet.emit(self._events.error(ErrorCode.ENGINE_ERROR, problem))
            return tts

        return make

    async def _operator_speech(self, taken: SupervisionTakenOverData) -> OperatorSpeech | None:
        """Transcription of a take-over's operator, on the call's STT (once it runs)."""
        task = self._start_task
        if task is not None and not task.done():
            await asyncio.wait([task])  # a take-over as the call starts: its engines first
        engines = self._engines
        if self._closed or engines is None or engines.stt is None:
            log.warning("operator speech not transcribed: no STT", extra={"call_id": self.call_id})
            return None
        settings = self._settings
        params = VADParams(
            confidence=settings.vad_confidence,
            stop_secs=settings.operator_stop_ms / 1000,
            min_volume=settings.vad_min_volume,
        )
        speech = OperatorSpeech(
            operator=taken.operator,
            utterance_id=taken.utterance_id,
            sample_rate=self._rate,
            vad=self._models.vad(params, self._rate),
            stt=engines.stt,
            events=self._events,
            outlet=self._outlet,
            preroll_ms=settings.preroll_ms,
            max_line_ms=settings.max_turn_ms,
        )
        return speech if await speech.start() else None

    # -- subscriptions --------------------------------------------------------

    async def _on_audio(self, msg: Msg) -> None:
        try:
            frame = decode_frame(msg.data, msg.headers)
        except InvalidAudioFrameError:
            MALFORMED.labels("audio").inc()
            return
        if frame.sample_rate != self._rate or not frame.pcm:
            MALFORMED.labels("audio").inc()
            return
        if self._pipeline is not None:
            await self._pipeline.audio(frame)
        elif not self._failed and not self._closed:
            self._audio_waiting.append(frame)

    async def _on_say(self, msg: Msg) -> None:
        if msg.reply:  # the orchestrator waits for this receipt (deliver_control)
            await msg.respond(b"")
        try:
            command = parse_control(msg.data)
        except ValidationError:
            MALFORMED.labels("say").inc()
            return
        if not isinstance(command, Say) or command.call_id != self.call_id:
            MALFORMED.labels("say").inc()
            return
        trace = extract_trace_context(msg.headers) if sampled(msg.headers) else None
        await self._feed(_say(command.data, trace))

    async def _on_mark(self, msg: Msg) -> None:
        try:
            mark = decode_mark(msg.headers)
        except InvalidAudioFrameError:
            MALFORMED.labels("mark").inc()
            return
        await self._feed(_mark(mark))

    async def _feed(self, feed: Feed) -> None:
        if self._pipeline is not None:
            await feed(self._pipeline)
        elif not self._failed and not self._closed:
            self._control_waiting.append(feed)


def wants_amd(call: CallStarted, settings: MediaSettings) -> bool:
    """An outbound call placed with machine detection, through a provider media checks for."""
    data = call.data
    asked = data.direction is Direction.OUTBOUND and data.context.get(AMD_CONTEXT_KEY) == "1"
    return asked and settings.runs_amd(data.provider)


def _say(data: SayData, trace: Context | None) -> Feed:
    async def feed(pipeline: CallPipeline) -> None:
        await pipeline.say(data, trace)

    return feed


def _mark(mark: PlaybackMark) -> Feed:
    async def feed(pipeline: CallPipeline) -> None:
        await pipeline.mark(mark)

    return feed
