"""ElevenLabs and Cartesia TTS against their stand-ins: audio at the call's rate with word
timings, a slow start, failures mid-stream, a refused key."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest

from voicebus.devkit.vendors import Scenario, VendorStandIn
from voicebus.devkit.vendors.scenarios import TEST_KEY
from voicebus.engines.base import EngineAuthError, EngineContext, EngineError
from voicebus.engines.cloud import cartesia_tts, elevenlabs_tts
from voicebus.engines.cloud._socket_tts import SocketTTS
from voicebus.engines.streaming import SpeechChunk

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

TEXT = "Your order has shipped and will arrive on Friday."
Make = Callable[[str, str], SocketTTS]


def _eleven(url: str, key: str) -> SocketTTS:
    return elevenlabs_tts.create(
        {"base_url": url, "voice": "JBFqnCBsd6RMkjVDRZzb"},
        EngineContext(api_key=key, allow_private_urls=True),
    )


def _cartesia(url: str, key: str) -> SocketTTS:
    return cartesia_tts.create(
        {"base_url": url, "voice": "a0e99841-438c-4a64-b679"},
        EngineContext(api_key=key, allow_private_urls=True),
    )


ENGINES = pytest.mark.parametrize(
    ("make", "vendor"), [(_eleven, "elevenlabs"), (_cartesia, "cartesia")]
)


@pytest.fixture(scope="module")
async def vendors() -> AsyncIterator[VendorStandIn]:
    async with VendorStandIn() as server:
        yield server


async def _all(engine: SocketTTS, rate: int = 8000) -> list[SpeechChunk]:
    return [c async for c in engine.synthesize_timed(TEXT, rate)]


@ENGINES
async def test_audio_with_word_timings(vendors: VendorStandIn, make: Make, vendor: str) -> None:
    engine = make(vendors.base_url(), TEST_KEY)
    chunks = await _all(engine)
    again = await _all(engine)  # same socket, next context
    await engine.aclose()
    audio = np.frombuffer(b"".join(c.pcm for c in chunks), dtype="<i2")
    assert audio.size > 8000
    assert np.abs(audio).max() > 1000
    words = [w for c in chunks for w in c.words]
    assert [w.word for w in words] == TEXT.split()
    starts = [w.start_ms for w in words]
    assert starts == sorted(starts)
    assert words[-1].end_ms <= audio.size / 8 + 1
    assert len(again) == len(chunks)
    record = vendors.recorded(vendor)[-1]
    assert record.key_ok


@ENGINES
async def test_slow_start(vendors: VendorStandIn, make: Make, vendor: str) -> None:
    engine = make(vendors.base_url(Scenario.SLOW), TEST_KEY)
    started = time.monotonic()
    stream = engine.synthesize_timed(TEXT, 8000)
    first = await anext(stream)
    assert time.monotonic() - started >= 0.7
    assert first.pcm
    await stream.aclose()
    await engine.aclose()


async def _drain(stream: AsyncIterator[SpeechChunk], into: list[SpeechChunk]) -> None:
    async for chunk in stream:
        into.append(chunk)


@ENGINES
@pytest.mark.parametrize("scenario", [Scenario.CLOSE_MID, Scenario.MALFORMED, Scenario.ERROR_MID])
async def test_broken_mid_stream(
    vendors: VendorStandIn, make: Make, vendor: str, scenario: Scenario
) -> None:
    engine = make(vendors.base_url(scenario), TEST_KEY)
    got: list[SpeechChunk] = []
    with pytest.raises(EngineError) as failed:
        await _drain(engine.synthesize_timed(TEXT, 8000), got)
    assert got
    assert failed.value.kind in ("closed", "protocol")
    await engine.aclose()


@ENGINES
async def test_refused_key(vendors: VendorStandIn, make: Make, vendor: str) -> None:
    engine = make(vendors.base_url(), "wrong")
    with pytest.raises(EngineAuthError):
        await _all(engine)


def test_options_are_checked() -> None:
    context = EngineContext(api_key="k")
    with pytest.raises(EngineError, match="'voice'"):
        elevenlabs_tts.create({"voice": "../etc"}, context)
    with pytest.raises(EngineError, match="'model' is 'gpt'"):
        cartesia_tts.create({"voice": "v1", "model": "gpt"}, context)
    with pytest.raises(EngineError, match="'language' is 'xx'"):
        cartesia_tts.create({"voice": "v1", "language": "xx"}, context)
