"""What the stand-ins hear and say: a real local transcription, and speech-shaped tones."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from voicebus.devkit.caller.audio import SAMPLE_RATE, resample, speechlike
from voicebus.engines.stt.whisper_local import WhisperLocalSTT
from voicebus.runtime.codecs import ulaw_to_pcm16

Transcriber = Callable[[bytes, int], Coroutine[Any, Any, str]]
"""PCM16 audio at a rate → what was said."""

_whisper: WhisperLocalSTT | None = None


async def whisper_transcriber(pcm16: bytes, sample_rate: int) -> str:
    """Transcribe with the local whisper tiny.en (what a vendor would hear)."""
    global _whisper
    if _whisper is None:
        _whisper = WhisperLocalSTT()
    if not pcm16:
        return ""
    return (await _whisper.transcribe(pcm16, sample_rate)).text


async def warm_whisper() -> None:
    """Load the local whisper now, so the first request answers as fast as the next ones."""
    global _whisper
    if _whisper is None:
        _whisper = WhisperLocalSTT()
    await _whisper.warm()


def fixed_transcriber(text: str) -> Transcriber:
    """Hears ``text`` in any audio with sound in it (cheap, for protocol tests)."""

    async def hear(pcm16: bytes, _rate: int) -> str:
        await asyncio.sleep(0)
        return text if any(pcm16) else ""

    return hear


def decode(audio: bytes, encoding: str) -> bytes:
    """The stream's audio as PCM16."""
    return ulaw_to_pcm16(audio) if encoding == "mulaw" else audio


def voice(text: str, sample_rate: int) -> bytes:
    """Speech-shaped tone bursts for ``text`` at ``sample_rate`` (PCM16LE)."""
    return resample(speechlike(text), SAMPLE_RATE, sample_rate)


def word_times(text: str, total_ms: float) -> list[tuple[str, float, float]]:
    """Words spread over the audio in proportion to their length: (word, start, end) ms."""
    words = text.split()
    if not words:
        return []
    weights = [len(w) + 1 for w in words]
    scale = total_ms / sum(weights)
    out, start = [], 0.0
    for word, weight in zip(words, weights, strict=True):
        end = start + weight * scale
        out.append((word, start, end))
        start = end
    return out
