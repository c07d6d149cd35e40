"""whisper-local STT: real speech through a phone line comes back word for word; silence
and noise come back empty; the model files are verified; the event loop stays free."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voicebus.engines.audio import float_to_pcm16
from voicebus.engines.base import STT, EngineError, STTEngine, Warmable
from voicebus.engines.builtin import load_builtin_engines
from voicebus.engines.models import ModelIntegrityError
from voicebus.engines.stt import whisper_local
from voicebus.engines.stt.whisper_local import WhisperLocalSTT
from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16

pytestmark = pytest.mark.component

Speak = Callable[[str, int], Awaitable[bytes]]


def phone_line(pcm16_8k: bytes) -> bytes:
    """Audio as a phone call carries it: 8 kHz μ-law, decoded back to PCM16."""
    return ulaw_to_pcm16(pcm16_to_ulaw(pcm16_8k))


def words(text: str) -> list[str]:
    """Lower-case words, punctuation and case ignored."""
    return re.findall(r"[a-z']+", text.lower())


@pytest.mark.parametrize(
    "sentence",
    [
        "Hello, I would like to check the status of my order.",
        "Thank you very much, goodbye.",
    ],
)
async def test_speech_through_a_phone_line_comes_back_word_for_word(
    speak: Speak, stt: WhisperLocalSTT, sentence: str
) -> None:
    heard = await stt.transcribe(phone_line(await speak(sentence, 8000)), 8000)
    assert words(heard.text) == words(sentence)
    assert heard.text == heard.text.strip()
    assert heard.language == "en"
    assert heard.confidence is not None
    assert 0.3 < heard.confidence <= 1.0


async def test_wideband_input_is_resampled(speak: Speak, stt: WhisperLocalSTT) -> None:
    sentence = "Please send me a new password."
    heard = await stt.transcribe(await speak(sentence, 24000), 24000)
    assert words(heard.text) == words(sentence)


async def test_digital_silence_is_empty(stt: WhisperLocalSTT) -> None:
    heard = await stt.transcribe(bytes(2 * 8000 * 2), 8000)
    assert heard.text == ""
    assert heard.confidence is None


async def test_idle_phone_line_is_empty(stt: WhisperLocalSTT) -> None:
    quiet = np.random.default_rng(1).standard_normal(8000 * 2).astype(np.float32) * 3e-4
    heard = await stt.transcribe(phone_line(float_to_pcm16(quiet)), 8000)
    assert heard.text == ""


async def test_loud_noise_is_empty(stt: WhisperLocalSTT) -> None:
    noise = np.random.default_rng(7).standard_normal(8000 * 2).astype(np.float32) * 0.1
    heard = await stt.transcribe(phone_line(float_to_pcm16(noise)), 8000)
    assert heard.text == ""


async def test_empty_segment_is_empty(stt: WhisperLocalSTT) -> None:
    assert (await stt.transcribe(b"", 8000)).text == ""


async def test_malformed_audio_is_refused(stt: WhisperLocalSTT) -> None:
    with pytest.raises(EngineError, match="PCM16"):
        await stt.transcribe(b"\x00\x01\x02", 8000)


async def test_the_event_loop_keeps_running_during_a_transcription(
    speak: Speak, stt: WhisperLocalSTT
) -> None:
    audio = phone_line(await speak("One more sentence to keep the model busy for a while.", 8000))
    # Longer audio: several seconds of speech keep the model busy well past a few ticks.
    audio = audio * 3
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await stt.transcribe(audio, 8000)
    finally:
        ticker.cancel()
    assert ticks >= 3


async def test_concurrent_segments_are_each_transcribed(speak: Speak, stt: WhisperLocalSTT) -> None:
    one, two = "Where is my parcel?", "I need to change my address."
    audio = [phone_line(await speak(s, 8000)) for s in (one, two)]
    heard = await asyncio.gather(*(stt.transcribe(a, 8000) for a in audio))
    assert [words(h.text) for h in heard] == [words(one), words(two)]


def test_registry_builds_it_without_loading_and_it_fits_the_interface() -> None:
    load_builtin_engines()
    engine = STT.create("whisper-local", {"beam_size": 2})
    assert isinstance(engine, STTEngine)
    assert isinstance(engine, Warmable)
    assert isinstance(engine, WhisperLocalSTT)
    assert engine.beam_size == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"language": "fr", "model": "tiny.en"}, "only transcribes English"),
        ({"language": "xx"}, "option 'language' is 'xx'"),
        ({"model": "large-v3"}, "option 'model' is 'large-v3'"),
        ({"beam_size": 0}, "beam_size"),
        ({"beam": 2}, "unknown option"),
        ({"no_speech_threshold": "high"}, "no_speech_threshold"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(EngineError, match=message):
        whisper_local.create(options)


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """The model directory with links to the big files and copies of the small ones."""
    source = whisper_local.model_dir()
    copy = tmp_path / "model"
    copy.mkdir()
    for name in whisper_local.MODEL_FILES:
        if name == "model.bin":
            (copy / name).symlink_to(source / name)
        else:
            shutil.copy(source / name, copy / name)
    return copy


def test_untouched_model_copy_loads(model_copy: Path) -> None:
    model = whisper_local.load_model(model_copy)
    assert not model.model.is_multilingual


def test_tampered_model_file_is_refused_by_name(model_copy: Path) -> None:
    tokenizer = model_copy / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes().replace(b"the", b"teh", 1))
    with pytest.raises(ModelIntegrityError, match=r"tokenizer\.json has sha256"):
        whisper_local.load_model(model_copy)
