"""``hibari``: hibari-tts with its built-in voice "heart", 24 kHz, resampled for the call.

One synthesizer per process, loaded and warmed on first use or on :meth:`HibariTTS.warm`
(first audio ~0.3 s cold, ~20 ms warm). Text is synthesized one sentence at a time in a
worker thread, so the first sentence's audio is out while the next is still text.
Only "heart" ships inside the package; hibari downloads every other voice, which fails
offline and is refused here.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import numpy as np

from voicebus.engines.audio import FloatArray, StreamResampler, float_to_pcm16
from voicebus.engines.base import NO_CONTEXT, TTS, EngineContext, EngineError, Options
from voicebus.engines.models import verify_dir
from voicebus.engines.options import OptionReader

log = logging.getLogger(__name__)

NAME: Final = "hibari"
VOICE: Final = "heart"
HIBARI_RATE: Final = 24_000
WARM_TEXT: Final = "Hello there."

ASSET_FILES: Final[dict[str, str]] = {
    "hibari.onnx": "5f70741d4e900f4e85d0037498736cc1b3e1b9a63a13546a5da1e63abf4fccd8",
    "vocab.json": "70abefbe8a1c8865e43e0a43bbdc25b91a33e4aa053479d443ccf23e20a59e5d",
    "voices.json": "f8b7657ecd0e0e362d3403e99538c0e5bfe20d6a903dfcd04c772b2c73abb204",
    "normalize.json": "d478ff05404bc43ac3e0468e306674e51085f1b1afc94cdef7c7ea4fb0d56bd8",
    "lexicon_us_gold.json.gz": "63ae94f8ef0e906d5b24fe9b59ffcbd1529aca5686a774610e43973cbaa86ad2",
    "lexicon_us_silver.json.gz": "c4c2546ebf1eb07010331e7ef785a431aa17ba8e7bfb6b4af8d654ee96a71fd3",
    "tokenizer_exceptions.json": "ddf3a3da07bdcf5144270ea4530191d8580fb4fd6f5ae93296e87916e795659a",
    "tagger.json.gz": "d2da7502284bbbe45d49e0b7ce3ce67bdab82254150f4317f1b8559b4d38d0eb",
    "oov.onnx": "d3cfd8122c5f172a98c8de38268bf1213ee09f2c2ae4df6e055fc6532590fe76",
    "oov.json": "b462e6e5dbdf0e7346c732385d0dd844f612f1770871441c56932bff4ca75d8c",
}
"""The files the "heart" voice uses (hibari-tts 0.2.1 ``assets/``): file → sha256."""

_tts: Any = None
_load_lock = threading.Lock()
# The G2P and the ONNX session are shared by every call in the process; one sentence
# at a time keeps them consistent, and a sentence takes a few ms.
_synth_lock = threading.Lock()


def assets_dir() -> Path:
    """The installed hibari package's ``assets`` directory, found without importing it."""
    spec = importlib.util.find_spec("hibari")
    if spec is None or spec.origin is None:
        raise EngineError(f"{NAME}: the hibari-tts package is not installed")
    return Path(spec.origin).parent / "assets"


def load_synthesizer(assets: Path | None = None) -> Any:
    """Verify the voice's files, load hibari and synthesize a short text to warm it.

    Args:
        assets: The directory to verify; the installed package's by default.

    Raises:
        ModelIntegrityError: a file is missing or differs from its pinned digest.
    """
    verify_dir(assets or assets_dir(), ASSET_FILES)
    import hibari  # type: ignore[import-untyped]  # ships no type marker

    if hibari.SAMPLE_RATE != HIBARI_RATE:
        raise EngineError(f"{NAME}: hibari produces {hibari.SAMPLE_RATE} Hz, not {HIBARI_RATE} Hz")
    tts = hibari.Hibari(voice=VOICE, threads=1)
    for _ in tts.stream(WARM_TEXT):
        pass
    return tts


def shared_synthesizer() -> Any:
    """The process-wide synthesizer, loaded and warmed on first call (thread-safe)."""
    global _tts
    with _load_lock:
        if _tts is None:
            log.info("loading hibari voice")
            _tts = load_synthesizer()
            log.info("hibari voice loaded")
        return _tts


def split_sentences(text: str) -> list[str]:
    """Sentences as hibari sees them (titles and initials do not end a sentence)."""
    from hibari import Hibari

    sentences: list[str] = Hibari.split_sentences(text)
    return sentences


class HibariTTS:
    """Streams PCM16LE speech for a text at the requested rate, sentence by sentence.

    Args:
        speed: 1.0 is the voice's natural pace (0.5 slow … 2.0 fast).
    """

    name = NAME

    def __init__(self, *, speed: float = 1.0) -> None:
        self.speed = speed

    async def warm(self) -> None:
        """Load and warm the shared synthesizer now rather than on the first text."""
        await asyncio.to_thread(shared_synthesizer)

    async def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """Yield mono PCM16LE at ``sample_rate``: one chunk per sentence, as each is ready.

        Stopping the iteration (barge-in) stops synthesis after the current sentence.

        Raises:
            EngineError: a bad sample rate, or the synthesizer failed.
        """
        if sample_rate <= 0:
            raise EngineError(f"{NAME}: sample rate must be positive, not {sample_rate}")
        if not text.strip():
            return
        tts = await asyncio.to_thread(shared_synthesizer)
        sentences = split_sentences(text)
        resampler = StreamResampler(HIBARI_RATE, sample_rate)
        for index, sentence in enumerate(sentences):
            last = index == len(sentences) - 1
            pcm = await asyncio.to_thread(self._render, tts, sentence, resampler, last)
            if pcm:
                yield pcm

    def _render(self, tts: Any, sentence: str, resampler: StreamResampler, last: bool) -> bytes:
        with _synth_lock:
            try:
                parts: list[FloatArray] = list(tts.stream(sentence, speed=self.speed))
            except (RuntimeError, ValueError, KeyError) as exc:
                raise EngineError(f"{NAME}: synthesis failed: {exc}") from exc
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return float_to_pcm16(resampler.process(audio, last=last))


def create(options: Options, context: EngineContext = NO_CONTEXT) -> HibariTTS:
    """Factory for the registry: options ``voice`` (only ``heart``) and ``speed``."""
    read = OptionReader(NAME, options)
    voice = read.text("voice", VOICE)
    if voice != VOICE:
        raise EngineError(
            f"{NAME}: voice {voice!r} is not available offline; only {VOICE!r} ships in the package"
        )
    engine = HibariTTS(speed=read.number("speed", 1.0, low=0.5, high=2.0))
    read.finish()
    return engine


def register() -> None:
    """Add ``hibari`` to the TTS registry."""
    TTS.register(NAME, create)
