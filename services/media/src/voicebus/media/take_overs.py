"""A call's take-overs by a person, as media follows them: the operator's microphone heard.

Every media instance hears the call's supervision events over core NATS (as every
instance hears ``call.ended``); the session owning the call subscribes to its call's
``supervision.*`` and acts on ``taken_over``, ``handed_back`` and ``ended``. Between a
take-over and its end it subscribes to the call's out audio too, and hands the frames
carrying the take-over's utterance id (the operator's microphone, see
:mod:`voicebus.media.operator_speech`) to an :class:`OperatorSpeech`. Out audio is heard
only while a call is taken over: otherwise it is media's own, 50 frames a second.

A hand-back or an end releases only its own operator's take-over: another operator who
was only listening may close their supervision meanwhile. A lock keeps one change at a
time, and a take-over older than its operator's last hand-back seen is ignored (a
repeated or late event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from pydantic import ValidationError

from voicebus.contracts import subjects
from voicebus.contracts.audio import decode_frame
from voicebus.contracts.errors import InvalidAudioFrameError
from voicebus.contracts.events import (
    SupervisionEnded,
    SupervisionHandedBack,
    SupervisionTakenOver,
    SupervisionTakenOverData,
    parse_event,
)
from voicebus.media.metrics import MALFORMED
from voicebus.media.operator_speech import OperatorSpeech

log = logging.getLogger(__name__)

StartSpeech = Callable[[SupervisionTakenOverData], Awaitable[OperatorSpeech | None]]
"""Starts transcribing a take-over's operator; None when the call has no STT."""


class TakeOvers:
    """Follows one call's take-overs and transcribes the operator while one lasts.

    Args:
        tenant_id: the call's tenant.
        call_id: the call.
        sample_rate: the call's rate (operator frames at another rate are ignored).
        start_speech: starts an :class:`OperatorSpeech` for a take-over.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        call_id: str,
        sample_rate: int,
        start_speech: StartSpeech,
    ) -> None:
        self._nc: Client | None = None
        self._tenant_id = tenant_id
        self._call_id = call_id
        self._rate = sample_rate
        self._start_speech = start_speech
        self._subs: list[Subscription] = []
        self._audio_sub: Subscription | None = None
        self._speech: OperatorSpeech | None = None
        self._released_at: dict[str, datetime] = {}  # by operator
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def operator(self) -> str | None:
        """The operator whose speech is being transcribed now, if any."""
        return self._speech.operator if self._speech is not None else None

    async def open(self, nc: Client) -> None:
        """Subscribe to the call's supervision events on ``nc`` (the service's connection):
        one subscription, of which only take-overs, hand-backs and ends matter here."""
        self._nc = nc
        supervision = subjects.evt_filter(self._tenant_id, self._call_id, "supervision") + ".*"
        self._subs.append(await nc.subscribe(supervision, cb=self._on_event))

    async def close(self) -> None:
        """Unsubscribe; publish the operator's last line if a take-over lasts (idempotent)."""
        self._closed = True
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()
        async with self._lock:
            await self._release()

    async def _on_event(self, msg: Msg) -> None:
        # A core subscriber of a JetStream subject sees the publisher's reply inbox:
        # answering it would race JetStream's ack to the publisher, so nothing answers.
        try:
            event = parse_event(msg.data)
        except ValidationError:
            MALFORMED.labels("supervision").inc()
            return
        if event.call_id != self._call_id:
            MALFORMED.labels("supervision").inc()
            return
        async with self._lock:
            if self._closed:
                return
            if isinstance(event, SupervisionTakenOver):
                await self._take_over(event)
            elif isinstance(event, SupervisionHandedBack | SupervisionEnded):
                operator = event.data.operator
                last = self._released_at.get(operator)
                self._released_at[operator] = event.time if last is None else max(last, event.time)
                if self.operator == operator:
                    await self._release()

    async def _take_over(self, event: SupervisionTakenOver) -> None:
        data = event.data
        if self._speech is not None and self._speech.utterance_id == data.utterance_id:
            return  # the same take-over again
        released = self._released_at.get(data.operator)
        if released is not None and event.time <= released:
            return  # handed back already (its event came first)
        await self._release()
        if self._nc is None:
            return
        speech = await self._start_speech(data)
        if speech is None:
            return
        self._speech = speech
        self._audio_sub = await self._nc.subscribe(
            subjects.audio_out(self._call_id), cb=self._on_audio
        )
        log.info("transcribing the operator", extra={"call_id": self._call_id,
                                                    "operator": data.operator})  # fmt: skip

    async def _release(self) -> None:
        sub, self._audio_sub = self._audio_sub, None
        if sub is not None:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()
        speech, self._speech = self._speech, None
        if speech is not None:
            await speech.stop()
            ended = {"call_id": self._call_id, "operator": speech.operator}
            log.info("operator transcription ended", extra=ended)

    async def _on_audio(self, msg: Msg) -> None:
        speech = self._speech
        if speech is None:
            return
        try:
            frame = decode_frame(msg.data, msg.headers)
        except InvalidAudioFrameError:
            MALFORMED.labels("audio").inc()
            return
        if frame.utterance_id != speech.utterance_id:
            return  # the agent's own audio (e.g. the tail flushed at the take-over)
        if frame.sample_rate != self._rate or not frame.pcm:
            MALFORMED.labels("audio").inc()
            return
        await speech.audio(frame.pcm)
