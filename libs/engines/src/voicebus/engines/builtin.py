"""Registers the engines that ship with voicebus.

Each engine module exposes ``register()``, which adds its factory to the registry of
its role; this module only lists them. Importing an engine module is cheap: model
libraries (faster-whisper, hibari, onnxruntime) load when an engine first needs
its model, not at import.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_loaded = False


def load_builtin_engines() -> None:
    """Register every built-in engine in :mod:`voicebus.engines.base`'s registries (idempotent).

    STT: ``whisper-local``, ``deepgram``, ``openai``, ``sarvam``, ``cartesia``, ``null``.
    TTS: ``hibari``, ``deepgram``, ``elevenlabs``, ``cartesia``, ``openai``, ``sarvam``,
    ``silent``.
    LLM: ``openai``, ``anthropic``, ``gemini``, ``scripted``.
    """
    global _loaded
    with _lock:
        if _loaded:
            return
        from voicebus.engines.cloud import (
            cartesia_stt,
            cartesia_tts,
            deepgram_stt,
            deepgram_tts,
            elevenlabs_tts,
            openai_speech,
            sarvam,
        )
        from voicebus.engines.llm import anthropic, gemini, openai_compat, scripted
        from voicebus.engines.stt import null, whisper_local
        from voicebus.engines.tts import hibari, silent

        for module in (
            whisper_local, null, hibari, silent, openai_compat, scripted,
            deepgram_stt, deepgram_tts, anthropic, gemini, elevenlabs_tts, cartesia_tts,
            openai_speech, sarvam, cartesia_stt,
        ):  # fmt: skip
            module.register()
        _loaded = True
