"""whisper-local sessions: decoding while the caller speaks, the final ready at the turn's end."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

import pytest

from voicebus.engines.streaming import TranscriptUpdate
from voicebus.engines.stt.whisper_local import WhisperLocalSTT
from voicebus.engines.stt.whisper_stream import drop_echoes

RATE = 8000


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@pytest.mark.unit
def test_echoes_are_dropped() -> None:
    assert drop_echoes("Where is my order? Where is My order?") == "Where is my order?"
    assert drop_echoes("Where is my order? Where is my") == "Where is my order?"
    assert drop_echoes("Hi there. Where is my order?") == "Hi there. Where is my order?"
    assert drop_echoes("नमस्ते। नमस्ते।") == "नमस्ते।"


@pytest.mark.integration
async def test_session_final_is_ready_when_the_turn_ends(
    stt: WhisperLocalSTT, speak: Callable[[str, int], Awaitable[bytes]]
) -> None:
    line = await speak("Hi there, where is my order?", RATE)
    audio = bytes(8000) + line + bytes(16 * 300)  # 0.5 s before, the turn detector's 300 ms
    interims: list[TranscriptUpdate] = []
    session = await stt.open(RATE, interims.append)
    started = time.monotonic()
    for index, offset in enumerate(range(0, len(audio), 320)):
        session.push(audio[offset : offset + 320])
        await asyncio.sleep(max(0.0, started + (index + 1) * 0.02 - time.monotonic()))
    # It decodes while the caller speaks: an interim comes without the turn being ended. (How
    # soon is the stt-latency benchmark's question; a busy machine only makes it later.)
    async with asyncio.timeout(60):
        while not interims:
            await asyncio.sleep(0.05)
    final = await asyncio.wait_for(session.end_turn(), 30)
    await session.aclose()
    assert _words(final.text) == "hi there where is my order"
    assert final.final
    assert final.engine == "whisper-local"
    assert final.language == "en"
    assert all(not i.final for i in interims)


@pytest.mark.integration
async def test_silent_turn_is_empty_and_the_next_turn_is_its_own(
    stt: WhisperLocalSTT, speak: Callable[[str, int], Awaitable[bytes]]
) -> None:
    session = await stt.open(RATE)
    session.push(bytes(16 * 800))
    silent = session.end_turn()
    session.push(bytes(4000) + await speak("Thanks, bye.", RATE) + bytes(4800))
    spoken = session.end_turn()
    assert (await asyncio.wait_for(silent, 10)).text == ""
    assert _words((await asyncio.wait_for(spoken, 10)).text) == "thanks bye"
    await session.aclose()
