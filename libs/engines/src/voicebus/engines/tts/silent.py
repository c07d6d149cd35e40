"""``silent``: a TTS engine that costs nothing, for benchmarks and other services' tests.

It streams digital silence, one chunk per sentence, lasting as long as speaking the
text would roughly take (``ms_per_char``), so pacing, marks and barge-in behave as
with a real voice. It records the texts it was given.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Final

from voicebus.engines.base import NO_CONTEXT, TTS, EngineContext, EngineError, Options
from voicebus.engines.options import OptionReader

NAME: Final = "silent"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class SilentTTS:
    """Silence shaped like speech.

    Args:
        ms_per_char: Audio length per character of text (65 ms ≈ a natural pace).
    """

    name = NAME

    def __init__(self, *, ms_per_char: int = 65) -> None:
        self.ms_per_char = ms_per_char
        self.texts: list[str] = []

    async def warm(self) -> None:
        """Nothing to load."""

    async def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """Yield PCM16LE silence at ``sample_rate``, one chunk per sentence.

        Raises:
            EngineError: the sample rate is not positive.
        """
        if sample_rate <= 0:
            raise EngineError(f"{NAME}: sample rate must be positive, not {sample_rate}")
        self.texts.append(text)
        for sentence in _SENTENCE_END.split(text.strip()):
            samples = len(sentence) * self.ms_per_char * sample_rate // 1000
            if samples:
                yield bytes(2 * samples)


def create(options: Options, context: EngineContext = NO_CONTEXT) -> SilentTTS:
    """Factory for the registry: option ``ms_per_char``."""
    read = OptionReader(NAME, options)
    engine = SilentTTS(ms_per_char=read.integer("ms_per_char", 65, low=0, high=1000))
    read.finish()
    return engine


def register() -> None:
    """Add ``silent`` to the TTS registry."""
    TTS.register(NAME, create)
