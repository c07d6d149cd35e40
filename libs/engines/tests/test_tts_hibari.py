"""hibari TTS: real synthesis, streamed per sentence, at the call's rate, verified model files."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from voicebus.engines.audio import pcm16_to_float, rms_dbfs
from voicebus.engines.base import TTS, EngineError, TTSEngine, Warmable
from voicebus.engines.builtin import load_builtin_engines
from voicebus.engines.models import ModelIntegrityError, verify_dir
from voicebus.engines.tts import hibari
from voicebus.engines.tts.hibari import HibariTTS

pytestmark = pytest.mark.component

Speak = Callable[[str, int], Awaitable[bytes]]
FOUR_SENTENCES = (
    "Your order has shipped. It left our warehouse this morning. "
    "It should arrive on Thursday. Is there anything else I can help with?"
)


def seconds(pcm16: bytes, rate: int) -> float:
    return len(pcm16) / 2 / rate


async def test_speech_at_phone_rate_has_a_plausible_length(speak: Speak) -> None:
    pcm = await speak("Hello, thank you for calling. How can I help you today?", 8000)
    assert len(pcm) % 2 == 0
    assert 1.5 < seconds(pcm, 8000) < 8.0
    assert rms_dbfs(pcm16_to_float(pcm)) > -35.0  # speech, not silence


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
async def test_other_rates_give_the_same_duration(speak: Speak, rate: int) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    at_8k = seconds(await speak(text, 8000), 8000)
    at_rate = seconds(await speak(text, rate), rate)
    assert at_rate == pytest.approx(at_8k, abs=0.05)


async def test_empty_text_gives_no_audio(tts: HibariTTS) -> None:
    assert [chunk async for chunk in tts.synthesize("  \n ", 8000)] == []


async def test_bad_rate_is_refused(tts: HibariTTS) -> None:
    with pytest.raises(EngineError, match="sample rate"):
        _ = [chunk async for chunk in tts.synthesize("Hello.", 0)]


class _SentenceCounter:
    """Counts the sentences the shared synthesizer was asked for."""

    def __init__(self, synthesizer: Any) -> None:
        self.synthesizer = synthesizer
        self.original = synthesizer.stream
        self.sentences: list[str] = []

    def stream(self, text: str, **kwargs: Any) -> Iterator[Any]:
        self.sentences.append(text)
        return self.original(text, **kwargs)  # type: ignore[no-any-return]


@pytest.fixture
def counter(tts: HibariTTS, monkeypatch: pytest.MonkeyPatch) -> _SentenceCounter:
    synthesizer = hibari.shared_synthesizer()
    spy = _SentenceCounter(synthesizer)
    monkeypatch.setattr(synthesizer, "stream", spy.stream)
    return spy


async def test_first_sentence_arrives_before_the_rest_is_synthesized(
    tts: HibariTTS, counter: _SentenceCounter
) -> None:
    chunks = []
    synthesized_at_first_chunk = None
    async for chunk in tts.synthesize(FOUR_SENTENCES, 8000):
        if synthesized_at_first_chunk is None:
            synthesized_at_first_chunk = len(counter.sentences)
        chunks.append(chunk)
    assert synthesized_at_first_chunk == 1
    assert len(counter.sentences) == 4
    assert len(chunks) == 4
    total = sum(len(c) for c in chunks)
    assert len(chunks[0]) < total / 2


async def test_stopping_early_stops_synthesis(tts: HibariTTS, counter: _SentenceCounter) -> None:
    stream = tts.synthesize(FOUR_SENTENCES, 8000)
    first = await anext(stream)
    await stream.aclose()  # barge-in: the consumer walks away
    await asyncio.sleep(0.2)
    assert first
    assert len(counter.sentences) == 1


async def test_concurrent_texts_are_both_whole(speak: Speak) -> None:
    one, two = "Good morning, this is the first caller.", "And this is another call."
    alone = [await speak(one, 8000), await speak(two, 8000)]
    together = await asyncio.gather(speak(one, 8000), speak(two, 8000))
    for solo, mixed in zip(alone, together, strict=True):
        assert seconds(mixed, 8000) == pytest.approx(seconds(solo, 8000), abs=0.05)


def test_registry_builds_it_and_it_fits_the_interface() -> None:
    load_builtin_engines()
    engine = TTS.create("hibari", {"speed": 1.2})
    assert isinstance(engine, TTSEngine)
    assert isinstance(engine, Warmable)
    assert isinstance(engine, HibariTTS)
    assert engine.speed == 1.2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"voice": "emma"}, "not available offline"),
        ({"speed": 3.0}, "speed"),
        ({"sped": 1.0}, "unknown option"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(EngineError, match=message):
        hibari.create(options)


@pytest.fixture
def assets_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "assets"
    shutil.copytree(hibari.assets_dir(), copy)
    return copy


def test_untouched_voice_files_pass_verification(assets_copy: Path) -> None:
    verify_dir(assets_copy, hibari.ASSET_FILES)
    assert len(hibari.ASSET_FILES) >= 10


def test_tampered_voice_file_is_refused_by_name(assets_copy: Path) -> None:
    model = assets_copy / "hibari.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"hibari\.onnx"):
        hibari.load_synthesizer(assets_copy)


def test_missing_voice_file_is_refused_by_name(assets_copy: Path) -> None:
    (assets_copy / "vocab.json").unlink()
    with pytest.raises(ModelIntegrityError, match=r"vocab\.json is missing"):
        hibari.load_synthesizer(assets_copy)
