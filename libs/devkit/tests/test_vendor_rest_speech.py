"""OpenAI and Sarvam speech engines against their stand-ins (REST): audio at the call's rate,
transcripts through the session adapter, a slow start, failures, refused keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voicebus.devkit.caller.audio import speechlike
from voicebus.devkit.vendors import Scenario, VendorStandIn
from voicebus.devkit.vendors.scenarios import TEST_KEY
from voicebus.devkit.vendors.speech import fixed_transcriber
from voicebus.engines.base import EngineAuthError, EngineContext, EngineError
from voicebus.engines.cloud import openai_speech, sarvam
from voicebus.engines.streaming import open_session

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

HEARD = "मेरा ऑर्डर कहाँ है"


@pytest.fixture(scope="module")
async def vendors() -> AsyncIterator[VendorStandIn]:
    async with VendorStandIn(transcriber=fixed_transcriber(HEARD)) as server:
        yield server


def _context(key: str = TEST_KEY) -> EngineContext:
    return EngineContext(api_key=key, allow_private_urls=True)


async def _collect(stream: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for chunk in stream:
        into.append(chunk)


async def test_openai_tts_streams_pcm_resampled_to_the_call(vendors: VendorStandIn) -> None:
    engine = openai_speech.create_tts({"base_url": vendors.base_url() + "/v1"}, _context())
    got: list[bytes] = []
    await _collect(engine.synthesize("Your order has shipped today.", 8000), got)
    await engine.aclose()
    audio = np.frombuffer(b"".join(got), dtype="<i2")
    sent = vendors.recorded("openai-tts")[-1]
    # 24 kHz from the vendor → 8 kHz for the call: a third of the samples.
    assert abs(audio.size - sent.audio_bytes / 2 / 3) < 200
    assert np.abs(audio).max() > 1000
    assert len(got) > 1
    assert sent.body[0]["voice"] == "alloy"


async def test_openai_tts_cut_mid_stream(vendors: VendorStandIn) -> None:
    engine = openai_speech.create_tts(
        {"base_url": vendors.base_url(Scenario.CLOSE_MID) + "/v1"}, _context()
    )
    got: list[bytes] = []
    with pytest.raises(EngineError) as failed:
        await _collect(engine.synthesize("A long sentence that is cut in the middle.", 8000), got)
    assert failed.value.retryable
    await engine.aclose()


async def test_openai_stt_through_a_session(vendors: VendorStandIn) -> None:
    engine = openai_speech.create_stt({"base_url": vendors.base_url() + "/v1"}, _context())
    session = await open_session(engine, 8000)
    session.push(speechlike("where is my order"))
    final = await asyncio.wait_for(session.end_turn(), 5)
    assert final.text == HEARD
    assert final.final
    form = vendors.recorded("openai-stt")[-1].body[0]
    assert form == {"model": "gpt-4o-mini-transcribe", "response_format": "json", "language": "en"}
    await engine.aclose()


@pytest.mark.parametrize(
    ("scenario", "kind"), [(Scenario.ERROR_MID, "unavailable"), (Scenario.MALFORMED, "protocol")]
)
async def test_openai_stt_failures(vendors: VendorStandIn, scenario: Scenario, kind: str) -> None:
    engine = openai_speech.create_stt({"base_url": vendors.base_url(scenario) + "/v1"}, _context())
    with pytest.raises(EngineError) as failed:
        await engine.transcribe(speechlike("hello"), 8000)
    assert failed.value.kind == kind
    await engine.aclose()


async def test_sarvam_tts_at_the_call_rate_and_slow_start(vendors: VendorStandIn) -> None:
    engine = sarvam.create_tts(
        {"base_url": vendors.base_url(Scenario.SLOW), "voice": "shubh"}, _context()
    )
    started = time.monotonic()
    got: list[bytes] = []
    await _collect(engine.synthesize("आपका ऑर्डर भेज दिया गया है।", 8000), got)
    assert time.monotonic() - started >= 0.7
    body = vendors.recorded("sarvam-tts")[-1].body[0]
    assert body["speech_sample_rate"] == 8000
    assert body["target_language_code"] == "hi-IN"
    assert len(b"".join(got)) > 8000
    await engine.aclose()


async def test_sarvam_stt_detects_language(vendors: VendorStandIn) -> None:
    engine = sarvam.create_stt({"base_url": vendors.base_url(), "language": "unknown"}, _context())
    result = await engine.transcribe(speechlike("mera order"), 8000)
    assert result.text == HEARD
    assert result.language == "hi-IN"
    await engine.aclose()


async def test_refused_keys_are_auth_errors(vendors: VendorStandIn) -> None:
    bad = _context("wrong")
    stt = sarvam.create_stt({"base_url": vendors.base_url()}, bad)
    with pytest.raises(EngineAuthError, match="403"):
        await stt.transcribe(speechlike("x"), 8000)
    tts = openai_speech.create_tts({"base_url": vendors.base_url() + "/v1"}, bad)
    with pytest.raises(EngineAuthError, match="401"):
        await _collect(tts.synthesize("x", 8000), [])
    await stt.aclose()
    await tts.aclose()


def test_options_are_checked() -> None:
    context = EngineContext(api_key="k")
    with pytest.raises(EngineError, match="'voice' is 'nobody'"):
        sarvam.create_tts({"voice": "nobody"}, context)
    with pytest.raises(EngineError, match="'language' is 'xx-IN'"):
        sarvam.create_stt({"language": "xx-IN"}, context)
    with pytest.raises(EngineError, match="'voice' is 'robot'"):
        openai_speech.create_tts({"voice": "robot"}, context)
    with pytest.raises(EngineError, match="'language' is 'english'"):
        openai_speech.create_stt({"language": "english"}, context)
