"""The operator's speech while a person holds the call, transcribed into the call's history.

When an operator takes a call over (``supervision.taken_over``) the agent goes silent
and the edge publishes the operator's microphone on ``vb.audio.<call>.out``, as the
agent's side, with the utterance id the take-over event names. Media hears those frames
(only those: the agent's own audio carries other utterance ids), cuts them into lines
with a VAD of their own (the caller's VAD and turns are not touched), runs each line
through a session of the call's STT engine and publishes the text as
``supervision.human_said`` (``via="speech"``), the event the orchestrator already adds
to the LLM's history as the human agent's line and the console shows in the transcript.

:class:`SpeechCutter` is the pure part: VAD states in, the audio to transcribe and where
each line ends out. :class:`OperatorSpeech` is the shell around it: the VAD, the STT
session, the events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADState

from voicebus.contracts.events import ErrorCode
from voicebus.engines.base import EngineError, STTEngine
from voicebus.engines.streaming import StreamingSTT, STTSession, TranscriptUpdate, open_session
from voicebus.media.events import CallEvents
from voicebus.media.metrics import ENGINE_ERRORS
from voicebus.media.outlet import CallOutlet
from voicebus.media.pacing import bytes_per_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cut:
    """What to do with one buffer of operator audio.

    Attributes:
        audio: audio of the open line, to transcribe (empty: none).
        ends: the line ends after ``audio``.
    """

    audio: bytes = b""
    ends: bool = False


@dataclass(slots=True)
class SpeechCutter:
    """Cuts a stream of audio into lines from the VAD's state after each buffer.

    A line opens when the VAD confirms speech (with the audio kept just before it, so
    the first word is whole) and ends when the VAD confirms silence, or at
    ``max_line_bytes`` of audio.

    Attributes:
        preroll_bytes: audio kept before a line opens.
        max_line_bytes: the longest line.
    """

    preroll_bytes: int
    max_line_bytes: int
    _preroll: deque[bytes] = field(default_factory=deque)
    _preroll_len: int = 0
    _line_len: int = 0
    open: bool = False

    def feed(self, pcm: bytes, state: VADState) -> Cut:
        """The cut for ``pcm``, given the VAD's state once it has heard it."""
        if not self.open:
            if state is not VADState.SPEAKING:
                self._keep(pcm)
                return Cut()
            self.open = True
            audio = b"".join(self._preroll) + pcm
            self._preroll.clear()
            self._preroll_len = self._line_len = 0
        else:
            audio = pcm
        self._line_len += len(audio)
        if state in (VADState.QUIET, VADState.STARTING) or self._line_len >= self.max_line_bytes:
            self.open = False
            self._line_len = 0
            return Cut(audio, ends=True)
        return Cut(audio)

    def finish(self) -> bool:
        """End the stream: True if a line was open (it ends here)."""
        was_open, self.open = self.open, False
        self._line_len = 0
        self._preroll.clear()
        self._preroll_len = 0
        return was_open

    def _keep(self, pcm: bytes) -> None:
        self._preroll.append(pcm)
        self._preroll_len += len(pcm)
        while self._preroll and self._preroll_len - len(self._preroll[0]) >= self.preroll_bytes:
            self._preroll_len -= len(self._preroll.popleft())


class OperatorSpeech:
    """Transcribes one operator's holding of a call, line by line, in order.

    Args:
        operator: the operator's key id (from ``supervision.taken_over``).
        utterance_id: the utterance id their audio carries on ``vb.audio.<call>.out``.
        sample_rate: the call's rate (the operator's audio is at it too).
        vad: a VAD analyzer of its own (not the caller's).
        stt: the call's STT engine (a fallback chain); a session of its own is opened.
        events: builds the call's events (with the agent's redaction).
        outlet: where the events go.
        preroll_ms: audio kept before a line's onset.
        max_line_ms: the longest line sent to STT.
    """

    def __init__(
        self,
        *,
        operator: str,
        utterance_id: str,
        sample_rate: int,
        vad: VADAnalyzer,
        stt: StreamingSTT | STTEngine,
        events: CallEvents,
        outlet: CallOutlet,
        preroll_ms: int = 300,
        max_line_ms: int = 30_000,
    ) -> None:
        self.operator = operator
        self.utterance_id = utterance_id
        self._rate = sample_rate
        self._vad = vad
        self._stt = stt
        self._events = events
        self._outlet = outlet
        per_ms = bytes_per_ms(sample_rate)
        self._cutter = SpeechCutter(int(preroll_ms * per_ms), int(max_line_ms * per_ms))
        self._session: STTSession | None = None
        self._lines: asyncio.Queue[asyncio.Future[TranscriptUpdate] | None] = asyncio.Queue()
        self._publisher: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> bool:
        """Open the STT session; False (and a ``call.error``) if the engine refused."""
        self._vad.set_sample_rate(self._rate)
        try:
            self._session = await open_session(self._stt, self._rate)
        except EngineError as exc:
            self._failed(exc)
            self._closed = True
            return False
        self._publisher = asyncio.create_task(self._publish(), name="media-operator-speech")
        return True

    async def audio(self, pcm: bytes) -> None:
        """One frame of the operator's microphone."""
        if self._closed:
            return
        state = await self._vad.analyze_audio(pcm)
        session = self._session
        if self._closed or session is None:
            return  # stopped while the VAD scored the frame
        cut = self._cutter.feed(pcm, state)
        if cut.audio:
            session.push(cut.audio)
        if cut.ends:
            self._lines.put_nowait(session.end_turn())

    async def stop(self, timeout_s: float = 10.0) -> None:
        """End the open line, publish what is still being transcribed, close (idempotent).

        The last line before a hand-back is transcribed too: the operator's final words
        are part of what the caller heard.
        """
        if self._closed:
            return
        self._closed = True
        session, publisher = self._session, self._publisher
        if session is not None and self._cutter.finish():
            self._lines.put_nowait(session.end_turn())
        self._lines.put_nowait(None)
        if publisher is not None:
            try:
                await asyncio.wait_for(publisher, timeout_s)
            except TimeoutError:
                log.warning("operator speech still transcribing at hand-back; dropped")
        if session is not None:
            await session.aclose()
        await self._vad.cleanup()  # type: ignore[no-untyped-call]  # unannotated in pipecat

    async def _publish(self) -> None:
        while (line := await self._lines.get()) is not None:
            try:
                result = await line
            except Exception as exc:  # one failed line must not end transcription of the rest
                self._failed(exc)
                continue
            text = result.text.strip()
            if text:
                self._outlet.emit(self._events.human_said(self.operator, text))

    def _failed(self, exc: BaseException) -> None:
        ENGINE_ERRORS.labels("stt").inc()
        name = getattr(self._stt, "name", "stt")
        log.warning("operator speech transcription failed", extra={"engine": name})
        retryable = isinstance(exc, EngineError) and exc.retryable
        message = f"stt {name} (operator speech): {exc}"[:2000]
        self._outlet.emit(self._events.error(ErrorCode.ENGINE_ERROR, message, retryable=retryable))
