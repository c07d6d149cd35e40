"""Fakes implementing the engine protocols and the call outlet, as ordinary classes.

``FakeSTT`` answers each segment with the next scripted text and ``FakeTTS``
speaks a fixed duration per word, so tests know what to expect; both run their
"model" in a worker thread, as the real engines do.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from voicebus.contracts.audio import AudioFrame
from voicebus.contracts.events import Envelope
from voicebus.engines.base import EngineError, Transcription


class FakeSTT:
    """Hears each segment as the next of ``texts`` (then ``""``), after ``delay_s`` in a thread.

    Attributes:
        segments: the (pcm16, sample_rate) of every segment it was given.
    """

    name = "fake-stt"

    def __init__(self, texts: Sequence[str] = (), *, delay_s: float = 0.0) -> None:
        self._texts = list(texts)
        self.delay_s = delay_s
        self.segments: list[tuple[bytes, int]] = []
        self.busy_between: list[tuple[float, float]] = []

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcription:
        """Record the segment; answer the next scripted text."""
        self.segments.append((pcm16, sample_rate))
        started = time.monotonic()
        await asyncio.to_thread(time.sleep, self.delay_s)  # a model holding a thread
        self.busy_between.append((started, time.monotonic()))
        text = self._texts.pop(0) if self._texts else ""
        return Transcription(text=text, language="en", confidence=0.9)


class FakeTTS:
    """Speaks ``ms_per_word`` of a 440 Hz tone per word, in one piece per word.

    Pieces are deliberately not whole 20 ms frames (``ms_per_word`` need not be a
    multiple of 20), so frame slicing is exercised. ``fail_on`` texts raise.
    """

    name = "fake-tts"

    def __init__(self, *, ms_per_word: int = 130, fail_on: Sequence[str] = ()) -> None:
        self.ms_per_word = ms_per_word
        self.fail_on = set(fail_on)
        self.texts: list[str] = []

    def audio_bytes(self, text: str, sample_rate: int) -> int:
        """Bytes of audio this engine produces for ``text``."""
        return len(text.split()) * self._word_samples(sample_rate) * 2

    def _word_samples(self, sample_rate: int) -> int:
        return sample_rate * self.ms_per_word // 1000

    async def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """Yield one tone piece per word."""
        self.texts.append(text)
        if text in self.fail_on:
            raise EngineError("fake-tts: told to fail")
        n = self._word_samples(sample_rate)
        tone = (np.sin(2 * math.pi * 440 * np.arange(n) / sample_rate) * 8000).astype("<i2")
        for _word in text.split():
            await asyncio.sleep(0)
            yield tone.tobytes()


@dataclass
class SentFrame:
    """A frame the outlet was given, and when."""

    frame: AudioFrame
    at: float


@dataclass
class RecordingOutlet:
    """A :class:`~voicebus.media.outlet.CallOutlet` that records everything."""

    frames: list[SentFrame] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)
    clears: list[tuple[str | None, float]] = field(default_factory=list)

    async def send_audio(self, frame: AudioFrame) -> None:
        """Record a frame."""
        self.frames.append(SentFrame(frame, time.monotonic()))

    def emit(self, event: Envelope) -> None:
        """Record an event."""
        self.events.append(event)

    async def clear(self, utterance_id: str | None) -> None:
        """Record a clear."""
        self.clears.append((utterance_id, time.monotonic()))

    def types(self) -> list[str]:
        """Event names, in order."""
        return [event.event_name for event in self.events]

    def of(self, event_name: str) -> list[Envelope]:
        """Events with this name, in order."""
        return [event for event in self.events if event.event_name == event_name]
