"""Cloud engines against the stand-in vendors on loopback: the real clients, the vendors'
wire protocols, selected by URL. Normal streaming, a slow start, an error mid-stream,
a refused key, malformed frames and a socket closed mid-utterance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voicebus.devkit.caller.audio import speechlike
from voicebus.devkit.vendors import Scenario, VendorStandIn
from voicebus.devkit.vendors.scenarios import TEST_KEY
from voicebus.devkit.vendors.speech import fixed_transcriber
from voicebus.engines.base import (
    ChatMessage,
    EngineAuthError,
    EngineContext,
    EngineError,
    TextDelta,
    TokenUsage,
)
from voicebus.engines.cloud import cartesia_stt, deepgram_stt, deepgram_tts
from voicebus.engines.llm import anthropic
from voicebus.engines.streaming import TranscriptUpdate

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

HEARD = "where is my order one two three four"
CONTEXT = EngineContext(api_key=TEST_KEY, tenant_id="acme", allow_private_urls=True)


@pytest.fixture(scope="module")
async def vendors() -> AsyncIterator[VendorStandIn]:
    async with VendorStandIn(transcriber=fixed_transcriber(HEARD)) as server:
        yield server


async def _drain(stream: AsyncIterator[object], into: list[object]) -> None:
    """Collect what a stream yields until it ends or raises."""
    async for item in stream:
        into.append(item)


def _speech_ms(ms: int) -> bytes:
    audio = speechlike("hello there how are you today my friend")
    return audio[: ms * 16]


# -- Deepgram STT -------------------------------------------------------------------


def _stt(
    vendors: VendorStandIn, scenario: Scenario = Scenario.OK, key: str = TEST_KEY
) -> deepgram_stt.DeepgramSTT:
    context = EngineContext(api_key=key, allow_private_urls=True)
    return deepgram_stt.create({"base_url": vendors.base_url(scenario, ws=True)}, context)


async def test_deepgram_stt_streams_mulaw_and_gives_interims_and_a_final(
    vendors: VendorStandIn,
) -> None:
    interims: list[TranscriptUpdate] = []
    session = await _stt(vendors).open(8000, interims.append)
    audio = _speech_ms(1000)
    for i in range(0, len(audio), 320):
        session.push(audio[i : i + 320])
    final = await asyncio.wait_for(session.end_turn(), 5)
    await session.aclose()
    assert final.final
    assert final.text == HEARD
    assert final.engine == "deepgram"
    assert final.confidence == pytest.approx(0.97)
    assert [w.word for w in final.words][-1] == "four"
    assert 0 <= final.words[0].start_ms < final.words[-1].end_ms <= 1001
    assert interims
    assert not interims[0].final
    assert HEARD.startswith(interims[0].text)
    record = vendors.recorded("deepgram-stt")[-1]
    # μ-law straight from the phone: one byte per sample at 8 kHz, no resampling.
    assert record.query["encoding"] == "mulaw"
    assert record.query["sample_rate"] == "8000"
    assert record.audio_bytes == len(audio) // 2
    assert record.key_ok
    assert {"type": "Finalize"} in record.body
    assert {"type": "CloseStream"} in record.body


async def test_deepgram_stt_turns_are_kept_apart(vendors: VendorStandIn) -> None:
    session = await _stt(vendors).open(8000)
    session.push(_speech_ms(600))
    first = session.end_turn()
    session.push(bytes(16 * 600))  # silence: nothing heard in the second turn
    second = session.end_turn()
    assert (await asyncio.wait_for(first, 5)).text == HEARD
    assert (await asyncio.wait_for(second, 5)).text == ""
    await session.aclose()


async def test_deepgram_stt_slow_start_still_answers(vendors: VendorStandIn) -> None:
    session = await _stt(vendors, Scenario.SLOW).open(8000)
    session.push(_speech_ms(400))
    started = asyncio.get_running_loop().time()
    final = await asyncio.wait_for(session.end_turn(), 5)
    assert final.text == HEARD
    assert asyncio.get_running_loop().time() - started >= 0.7
    await session.aclose()


async def test_deepgram_stt_refused_key_is_an_auth_error(vendors: VendorStandIn) -> None:
    with pytest.raises(EngineAuthError, match="refused the API key"):
        await _stt(vendors, key="wrong-key").open(8000)
    with pytest.raises(EngineAuthError):
        await _stt(vendors, Scenario.UNAUTHORIZED).open(8000)


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [
        (Scenario.CLOSE_MID, "closed"),
        (Scenario.MALFORMED, "protocol"),
        (Scenario.ERROR_MID, "protocol"),
    ],
)
async def test_deepgram_stt_broken_stream_fails_the_turn(
    vendors: VendorStandIn, scenario: Scenario, kind: str
) -> None:
    session = await _stt(vendors, scenario).open(8000)
    audio = _speech_ms(1000)
    for i in range(0, len(audio), 320):
        session.push(audio[i : i + 320])
        await asyncio.sleep(0.001)
    with pytest.raises(EngineError) as failed:
        await asyncio.wait_for(session.end_turn(), 5)
    assert failed.value.kind in (kind, "closed")
    await session.aclose()


# -- Deepgram TTS -------------------------------------------------------------------


def _tts(vendors: VendorStandIn, scenario: Scenario = Scenario.OK) -> deepgram_tts.DeepgramTTS:
    return deepgram_tts.create({"base_url": vendors.base_url(scenario)}, CONTEXT)


async def test_deepgram_tts_streams_linear16_at_the_call_rate(vendors: VendorStandIn) -> None:
    engine = _tts(vendors)
    chunks = [c async for c in engine.synthesize("Your order has shipped.", 8000)]
    again = [c async for c in engine.synthesize("Anything else?", 8000)]  # same socket
    await engine.aclose()
    assert len(chunks) > 1
    assert all(len(c) % 2 == 0 for c in chunks)
    audio = np.frombuffer(b"".join(chunks), dtype="<i2")
    assert audio.size > 8000 * 0.5
    assert np.abs(audio).max() > 1000
    assert again
    records = vendors.recorded("deepgram-tts")
    assert records[-1].query == {
        "model": "aura-2-thalia-en",
        "encoding": "linear16",
        "sample_rate": "8000",
    }
    assert {"type": "Speak", "text": "Anything else?"} in records[-1].body


@pytest.mark.parametrize("scenario", [Scenario.CLOSE_MID, Scenario.MALFORMED, Scenario.ERROR_MID])
async def test_deepgram_tts_broken_stream_raises_after_some_audio(
    vendors: VendorStandIn, scenario: Scenario
) -> None:
    engine = _tts(vendors, scenario)
    got: list[object] = []
    with pytest.raises(EngineError):
        await _drain(engine.synthesize("A fairly long sentence to be cut in half.", 8000), got)
    assert got  # it failed mid-stream, not before
    await engine.aclose()


async def test_deepgram_tts_refused_key(vendors: VendorStandIn) -> None:
    engine = deepgram_tts.create(
        {"base_url": vendors.base_url()}, EngineContext(api_key="nope", allow_private_urls=True)
    )
    with pytest.raises(EngineAuthError):
        async for _ in engine.synthesize("Hello.", 8000):
            pass


# -- Anthropic ----------------------------------------------------------------------


def _claude(
    vendors: VendorStandIn, scenario: Scenario = Scenario.OK, key: str = TEST_KEY
) -> anthropic.AnthropicLLM:
    context = EngineContext(api_key=key, allow_private_urls=True)
    return anthropic.create({"base_url": vendors.base_url(scenario)}, context)


CONVERSATION = [
    ChatMessage("system", "Be brief."),
    ChatMessage("assistant", "Hi, this is Acme. How can I help?"),  # the greeting comes first
    ChatMessage("user", "Where is my order?"),
]


async def test_anthropic_streams_text_with_alternating_roles(vendors: VendorStandIn) -> None:
    engine = _claude(vendors)
    chunks = [c async for c in engine.stream(CONVERSATION)]
    await engine.aclose()
    *texts, usage = chunks
    assert all(isinstance(c, TextDelta) for c in texts)
    assert isinstance(usage, TokenUsage)  # the counts come last, after the reply
    assert len(texts) > 3
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)).startswith(
        "You said Where is my order?"
    )
    body = vendors.recorded("anthropic")[-1].body[0]
    assert body["system"] == "Be brief."
    assert body["stream"] is True
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [
        (Scenario.ERROR_MID, "unavailable"),
        (Scenario.MALFORMED, "protocol"),
        (Scenario.CLOSE_MID, "closed"),
    ],
)
async def test_anthropic_broken_stream(
    vendors: VendorStandIn, scenario: Scenario, kind: str
) -> None:
    engine = _claude(vendors, scenario)
    got: list[object] = []
    with pytest.raises(EngineError) as failed:
        await _drain(engine.stream(CONVERSATION), got)
    assert failed.value.kind == kind
    assert failed.value.retryable
    assert got
    await engine.aclose()


async def test_anthropic_refused_key(vendors: VendorStandIn) -> None:
    engine = _claude(vendors, key="nope")
    with pytest.raises(EngineAuthError, match="401"):
        async for _ in engine.stream(CONVERSATION):
            pass
    await engine.aclose()


async def test_no_key_is_a_clear_error_at_creation() -> None:
    with pytest.raises(EngineError, match="no API key"):
        deepgram_stt.create({}, EngineContext(api_key=None))


async def test_private_urls_are_refused_unless_allowed() -> None:
    strict = EngineContext(api_key="k", allow_private_urls=False)
    for url in ("http://127.0.0.1:9/v1", "ws://localhost:1", "http://10.0.0.1", "http://[::1]"):
        with pytest.raises(EngineError, match="base_url"):
            anthropic.create({"base_url": url}, strict)
    with pytest.raises(EngineError, match="credentials"):
        deepgram_tts.create({"base_url": "https://u:p@api.example.com"}, strict)


# -- Cartesia STT -------------------------------------------------------------------


def _ink(vendors: VendorStandIn, scenario: Scenario = Scenario.OK) -> cartesia_stt.CartesiaSTT:
    return cartesia_stt.create({"base_url": vendors.base_url(scenario, ws=True)}, CONTEXT)


async def test_cartesia_stt_interims_and_a_final(vendors: VendorStandIn) -> None:
    interims: list[TranscriptUpdate] = []
    session = await _ink(vendors).open(8000, interims.append)
    session.push(_speech_ms(800))
    final = await asyncio.wait_for(session.end_turn(), 5)
    session.push(bytes(3200))
    second = await asyncio.wait_for(session.end_turn(), 5)
    await session.aclose()
    assert final.text == HEARD
    assert final.engine == "cartesia"
    assert final.words[0].word == "where"
    assert second.text == ""
    assert interims
    record = vendors.recorded("cartesia-stt")[-1]
    assert record.query["encoding"] == "pcm_s16le"
    assert record.body == ["finalize", "finalize", "close"]


@pytest.mark.parametrize("scenario", [Scenario.CLOSE_MID, Scenario.MALFORMED, Scenario.ERROR_MID])
async def test_cartesia_stt_broken_stream(vendors: VendorStandIn, scenario: Scenario) -> None:
    session = await _ink(vendors, scenario).open(8000)
    audio = _speech_ms(1500)
    for i in range(0, len(audio), 320):
        session.push(audio[i : i + 320])
        await asyncio.sleep(0.001)
    with pytest.raises(EngineError):
        await asyncio.wait_for(session.end_turn(), 5)
    await session.aclose()
