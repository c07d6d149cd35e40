"""TTS over an ordered list of engines: a failed or late sentence is re-issued on the next.

The first engine whose breaker allows it synthesizes the text. No first audio
within ``first_audio_s``, a gap longer than ``stall_s``, an error or a closed
socket moves the work to the next engine: the words whose audio was already
produced are not said again when the engine gave word timings; otherwise the
whole sentence is re-issued (the caller may hear its start twice, never a hole).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from voicebus.engines.base import EngineAuthError, EngineError, TTSEngine
from voicebus.engines.fallback.chain import Budgets, Chain
from voicebus.engines.fallback.incidents import Reporter, classify, failover, ignore
from voicebus.engines.streaming import SpeechChunk, WordTiming, synthesize_timed

ROLE = "tts"


class FallbackTTS:
    """A :class:`~voicebus.engines.streaming.TimedTTS` over several TTS engines.

    Args:
        engines: in order of preference.
        budgets: time limits per engine.
        report: receives engine failures and failovers (events).
        chain: the engines with their breakers (built from ``engines`` by default).
    """

    def __init__(
        self,
        engines: Sequence[TTSEngine],
        *,
        budgets: Budgets | None = None,
        report: Reporter = ignore,
        chain: Chain[TTSEngine] | None = None,
    ) -> None:
        self._chain = chain or Chain(ROLE, engines)
        self._budgets = budgets or Budgets()
        self._report = report
        self.name = self._chain.name(self._chain.engines[0])

    @property
    def engines(self) -> list[TTSEngine]:
        """The engines, in order."""
        return self._chain.engines

    async def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """Audio only (the plain :class:`TTSEngine` interface)."""
        async for chunk in self.synthesize_timed(text, sample_rate):
            yield chunk.pcm

    async def synthesize_timed(self, text: str, sample_rate: int) -> AsyncIterator[SpeechChunk]:
        """Yield the text's audio from the first engine that delivers it.

        Raises:
            EngineError: every engine failed (the last failure's message).
        """
        words = text.split()
        done_words = 0  # words whose audio the caller already has
        offset_ms = 0.0  # audio already yielded for this text
        previous: str | None = None
        last_error: EngineError | None = None
        last_kind = "failed"
        for index, engine in self._chain.candidates():
            last = self._chain.is_last(index)
            name = self._chain.name(engine)
            if previous is not None:
                reissued = "rest_of_sentence" if done_words else "sentence"
                self._report(failover(ROLE, previous, name, last_kind, reissued))
            remaining = " ".join(words[done_words:]) if done_words else text
            stream = synthesize_timed(engine, remaining, sample_rate)
            produced_ms = 0.0
            base_ms = offset_ms  # this engine's audio starts after what was yielded before
            timings: list[WordTiming] = []
            breaker = self._chain.breaker(engine)
            try:
                timeout = self._budgets.limit(self._budgets.first_audio_s, last=last)
                while True:
                    try:
                        async with asyncio.timeout(timeout):
                            chunk = await anext(stream)
                    except StopAsyncIteration:
                        break
                    timeout = self._budgets.limit(self._budgets.stall_s, last=last)
                    shifted = tuple(
                        WordTiming(w.word, w.start_ms + base_ms, w.end_ms + base_ms)
                        for w in chunk.words
                    )
                    timings.extend(chunk.words)
                    ms = len(chunk.pcm) / 2 / sample_rate * 1000
                    produced_ms += ms
                    offset_ms += ms
                    yield SpeechChunk(chunk.pcm, shifted)
            except (EngineError, TimeoutError, OSError) as exc:
                failure = classify(ROLE, name, exc)
                breaker.failure(auth=isinstance(exc, EngineAuthError))
                self._report(failure)
                last_error = exc if isinstance(exc, EngineError) else EngineError(failure.message)
                last_kind = failure.kind
                previous = name
                done_words += _words_done(timings, produced_ms)
                continue
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()
            breaker.success()
            return
        raise last_error or EngineError("tts: no engine available", kind="unavailable")


def _words_done(timings: list[WordTiming], produced_ms: float) -> int:
    """How many leading words had all their audio produced before the engine failed."""
    count = 0
    for timing in timings:
        if timing.end_ms <= produced_ms:
            count += 1
        else:
            break
    return count
