"""The simulated caller's voice: a TTS engine from the engines registry, or tone bursts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from voicebus.devkit.caller.audio import SAMPLE_RATE, resample, speechlike
from voicebus.engines.base import TTS, TTSEngine
from voicebus.engines.builtin import load_builtin_engines

DEFAULT_VOICE: Final = "hibari"
TONES: Final = "tones"


class ToneVoice:
    """Tone bursts with the rhythm of the text (see :func:`speechlike`): no model, no CPU.

    Voice activity detectors may not take tones for speech, and nothing transcribes
    them: use it to exercise the protocol, not the agent's understanding.
    """

    name = TONES

    async def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """Yield the whole line as one PCM16LE chunk at ``sample_rate``."""
        yield resample(speechlike(text), SAMPLE_RATE, sample_rate)


def voice(name: str = DEFAULT_VOICE) -> TTSEngine:
    """The TTS engine registered as ``name`` (``hibari``: local, offline), or ``tones``.

    Raises:
        voicebus.engines.base.UnknownEngineError: no such engine.
    """
    if name == TONES:
        return ToneVoice()
    load_builtin_engines()
    return TTS.create(name, {})


def default_voice() -> TTSEngine:
    """The caller's default voice: the local ``hibari`` engine."""
    return voice(DEFAULT_VOICE)
