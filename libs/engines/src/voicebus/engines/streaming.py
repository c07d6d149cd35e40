"""Streaming contracts: an STT session fed audio as it arrives, TTS audio with timestamps.

STT
    A :class:`STTSession` lives for a call. Media pushes the caller's audio while a turn
    is open (:meth:`STTSession.push`, never blocking the audio path) and closes each
    turn with :meth:`STTSession.end_turn`, which returns at once a future of the turn's
    final transcript: the boundary is where the call was made, so audio pushed after it
    belongs to the next turn even while the final is still being computed. Interim
    results, when the engine has them, go to the ``on_interim`` listener given at
    :meth:`StreamingSTT.open`. A session that breaks (socket closed, malformed frames,
    an error) fails the futures of its open turns; the fallback adapter replays their
    audio into the next engine.

    Engines that only transcribe whole segments (:class:`~voicebus.engines.base.STTEngine`)
    get a session through :class:`BatchSession`: the turn's audio is kept and
    transcribed when the turn ends.

TTS
    :class:`TimedTTS` engines also yield :class:`SpeechChunk` with the words (or
    characters grouped into words) whose audio the chunk carries, in milliseconds from
    the start of the text's audio, so "what the caller heard" is cut at a word.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from voicebus.engines.base import EngineError, STTEngine, TTSEngine


@dataclass(frozen=True, slots=True)
class WordTiming:
    """One word and when it is spoken.

    Attributes:
        word: the word as written.
        start_ms: start, from the start of the audio it belongs to.
        end_ms: end, same origin.
        confidence: the engine's confidence (STT), if any.
    """

    word: str
    start_ms: float
    end_ms: float
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class TranscriptUpdate:
    """An interim or final transcript of one turn.

    Attributes:
        text: what was heard so far (interim) or in the whole turn (final).
        final: the turn's final result.
        start_ms: start of the heard speech, from the start of the turn's audio.
        end_ms: end of the heard speech, same origin.
        confidence: the engine's confidence, if it reports one.
        language: the language heard (or the one asked for).
        words: per-word timings, when the engine gives them.
        engine: the engine that produced it.
    """

    text: str
    final: bool
    start_ms: float = 0.0
    end_ms: float = 0.0
    confidence: float | None = None
    language: str | None = None
    words: tuple[WordTiming, ...] = ()
    engine: str = ""


InterimListener = Callable[[TranscriptUpdate], None]


@runtime_checkable
class STTSession(Protocol):
    """One call's stream of caller audio into an STT engine."""

    engine: str

    def push(self, pcm16: bytes) -> None:
        """Audio of the open turn (mono PCM16LE at the session's rate); never blocks."""
        ...

    def end_turn(self) -> asyncio.Future[TranscriptUpdate]:
        """Close the turn: the future resolves with its final transcript (or fails)."""
        ...

    async def aclose(self) -> None:
        """Stop the session and release its connection (idempotent)."""
        ...


@runtime_checkable
class StreamingSTT(Protocol):
    """An STT engine that opens sessions (streams audio, gives interim results)."""

    name: str

    async def open(self, sample_rate: int, on_interim: InterimListener | None = None) -> STTSession:
        """Open a session for mono PCM16LE audio at ``sample_rate``.

        Raises:
            EngineError: the engine could not be reached or refused the request.
        """
        ...


@dataclass(frozen=True, slots=True)
class SpeechChunk:
    """Synthesized audio and the words it carries.

    Attributes:
        pcm: mono PCM16LE at the requested rate.
        words: words whose audio starts in this chunk, timed from the start of the
            text's audio (empty when the engine gives no timestamps).
    """

    pcm: bytes
    words: tuple[WordTiming, ...] = ()


@runtime_checkable
class TimedTTS(Protocol):
    """A TTS engine that can say when each word is spoken."""

    name: str

    def synthesize_timed(self, text: str, sample_rate: int) -> AsyncIterator[SpeechChunk]:
        """Yield audio chunks with the timings of the words they start."""
        ...


async def synthesize_timed(
    engine: TTSEngine | TimedTTS, text: str, sample_rate: int
) -> AsyncGenerator[SpeechChunk, None]:
    """Audio with word timings from any TTS engine (none for engines that give none)."""
    if isinstance(engine, TimedTTS):
        async for chunk in engine.synthesize_timed(text, sample_rate):
            yield chunk
        return
    async for pcm in engine.synthesize(text, sample_rate):
        yield SpeechChunk(pcm)


def words_from_chars(
    chars: Sequence[str], starts_ms: Sequence[float], durations_ms: Sequence[float]
) -> list[WordTiming]:
    """Group per-character timings (ElevenLabs' alignment) into words."""
    words: list[WordTiming] = []
    current: list[str] = []
    start = end = 0.0
    for char, begin, length in zip(chars, starts_ms, durations_ms, strict=False):
        if char.isspace():
            if current:
                words.append(WordTiming("".join(current), start, end))
                current = []
            continue
        if not current:
            start = float(begin)
        current.append(char)
        end = float(begin) + float(length)
    if current:
        words.append(WordTiming("".join(current), start, end))
    return words


# -- batch engines as sessions ------------------------------------------------------


@dataclass(slots=True)
class _Turn:
    audio: bytearray = field(default_factory=bytearray)


class BatchSession:
    """A session over a whole-segment engine: each turn is transcribed when it ends.

    Turns are transcribed one after another, in order.

    Args:
        engine: the segment engine.
        sample_rate: rate of the pushed audio.
    """

    def __init__(self, engine: STTEngine, sample_rate: int) -> None:
        self.engine = engine.name
        self._stt = engine
        self._rate = sample_rate
        self._turn = _Turn()
        self._previous: asyncio.Future[TranscriptUpdate] | None = None
        self._closed = False

    def push(self, pcm16: bytes) -> None:
        """Keep the audio for the turn's transcription."""
        if not self._closed:
            self._turn.audio += pcm16

    def end_turn(self) -> asyncio.Future[TranscriptUpdate]:
        """Transcribe the turn's audio (after the previous turn's)."""
        audio, self._turn = bytes(self._turn.audio), _Turn()
        previous = self._previous
        task = asyncio.ensure_future(self._transcribe(audio, previous))
        self._previous = task
        return task

    async def _transcribe(
        self, audio: bytes, previous: asyncio.Future[TranscriptUpdate] | None
    ) -> TranscriptUpdate:
        if previous is not None:
            await asyncio.wait([previous])
        if self._closed:
            raise EngineError(f"{self.engine}: session closed", kind="closed")
        result = await self._stt.transcribe(audio, self._rate)
        duration_ms = len(audio) / 2 / self._rate * 1000
        return TranscriptUpdate(
            text=result.text.strip(),
            final=True,
            start_ms=0.0,
            end_ms=duration_ms,
            confidence=result.confidence,
            language=result.language,
            engine=self.engine,
        )

    async def aclose(self) -> None:
        """Drop the open turn's audio."""
        self._closed = True
        self._turn = _Turn()


async def open_session(
    engine: STTEngine | StreamingSTT, sample_rate: int, on_interim: InterimListener | None = None
) -> STTSession:
    """A session on any STT engine: its own when it streams, else a :class:`BatchSession`."""
    if isinstance(engine, StreamingSTT):
        return await engine.open(sample_rate, on_interim)
    return BatchSession(engine, sample_rate)


def monotonic_ms() -> float:
    """Milliseconds of the monotonic clock."""
    return time.monotonic() * 1000
