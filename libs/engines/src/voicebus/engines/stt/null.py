"""``null``: an STT engine that costs nothing, for benchmarks and other services' tests.

It hears whatever it was told to hear (``text`` option, empty by default) and keeps
a record of the segments it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from voicebus.engines.base import (
    NO_CONTEXT,
    STT,
    EngineContext,
    EngineError,
    Options,
    Transcription,
)
from voicebus.engines.options import OptionReader

NAME: Final = "null"


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment a :class:`NullSTT` was asked to transcribe."""

    pcm16: bytes
    sample_rate: int


class NullSTT:
    """Returns a fixed transcription for every segment.

    Args:
        text: What every segment "says".
        language: Reported language.
    """

    name = NAME

    def __init__(self, *, text: str = "", language: str = "en") -> None:
        self.text = text
        self.language = language
        self.segments: list[Segment] = []

    async def warm(self) -> None:
        """Nothing to load."""

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcription:
        """Record the segment and return the fixed text.

        Raises:
            EngineError: the audio is malformed.
        """
        if sample_rate <= 0 or len(pcm16) % 2:
            raise EngineError(f"{NAME}: expected PCM16 audio at a positive sample rate")
        self.segments.append(Segment(pcm16, sample_rate))
        return Transcription(self.text, self.language, 1.0 if self.text else None)


def create(options: Options, context: EngineContext = NO_CONTEXT) -> NullSTT:
    """Factory for the registry: options ``text``, ``language``."""
    read = OptionReader(NAME, options)
    engine = NullSTT(text=read.text("text", ""), language=read.text("language", "en"))
    read.finish()
    return engine


def register() -> None:
    """Add ``null`` to the STT registry."""
    STT.register(NAME, create)
