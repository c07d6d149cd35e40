"""A call's pipeline with a streaming STT engine (Deepgram's stand-in) behind the fallback
chain: audio streams while the caller speaks, interims become partials, the final arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fakes import FakeTTS, RecordingOutlet
from media_kit import Harness, frames_of, silence, until

from voicebus.devkit.vendors import VendorStandIn
from voicebus.devkit.vendors.scenarios import TEST_KEY
from voicebus.devkit.vendors.speech import fixed_transcriber
from voicebus.engines.base import EngineContext
from voicebus.engines.cloud import deepgram_stt
from voicebus.engines.fallback.stt import FallbackSTT

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


@pytest.fixture
async def vendors() -> AsyncIterator[VendorStandIn]:
    async with VendorStandIn(transcriber=fixed_transcriber("where is my order")) as server:
        yield server


async def test_streaming_stt_in_the_pipeline(
    harness: Harness, speech: dict[str, bytes], vendors: VendorStandIn
) -> None:
    out = RecordingOutlet()
    engine = deepgram_stt.create(
        {"base_url": vendors.base_url(ws=True)}, EngineContext(api_key=TEST_KEY)
    )
    pipeline = await harness.start(out, stt=FallbackSTT([engine]), tts=FakeTTS())
    for frame in frames_of(silence(500) + speech["order"] + silence(1000)):
        await pipeline.audio(frame)
    await until(lambda: len(out.of("transcript.final")) == 1, timeout=10)
    final = out.of("transcript.final")[0]
    assert final.data.text == "where is my order"  # type: ignore[attr-defined]
    assert final.data.engine == "deepgram"  # type: ignore[attr-defined]
    assert out.of("transcript.partial")
    record = vendors.recorded("deepgram-stt")[-1]
    assert record.query["encoding"] == "mulaw"
    assert record.audio_bytes > 8000  # the turn's audio streamed, μ-law: one byte per sample
