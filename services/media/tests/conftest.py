"""Fixtures of the media tests; the helpers live in ``media_kit`` and ``fakes``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from voicebus.engines.tts.hibari import HibariTTS
from voicebus.media.models import SharedModels

# Tests import ``media_kit`` and ``fakes`` by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from media_kit import LINES, RATE, Harness


@pytest.fixture(scope="session")
def speech() -> dict[str, bytes]:
    """Each of :data:`LINES` spoken by the local TTS at 8 kHz (PCM16)."""

    async def synth() -> dict[str, bytes]:
        tts = HibariTTS()
        out = {}
        for key, text in LINES.items():
            out[key] = b"".join([pcm async for pcm in tts.synthesize(text, RATE)])
        return out

    return asyncio.run(synth())


@pytest.fixture(scope="session")
def models() -> SharedModels:
    """The VAD and smart-turn sessions, loaded once."""
    shared = SharedModels(vad_batch_wait_ms=2)  # batched, as in production; short waits
    asyncio.run(shared.load(smart_turn=True))
    return shared


@pytest_asyncio.fixture
async def harness(models: SharedModels) -> AsyncIterator[Harness]:
    """Start pipelines with ``await harness.start(outlet, ...)``; all stop after the test."""
    h = Harness(models, [])
    try:
        yield h
    finally:
        for pipeline in h.pipelines:
            await pipeline.stop()
