"""Fallback adapters and circuit breakers, with fake engines that implement the real protocols."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from voicebus.engines.base import (
    ChatMessage,
    EngineAuthError,
    EngineError,
    LLMChunk,
    TextDelta,
    ToolSpec,
    Transcription,
)
from voicebus.engines.fallback.breaker import BreakerBoard, BreakerSettings, BreakerState
from voicebus.engines.fallback.chain import Budgets, Chain
from voicebus.engines.fallback.incidents import EngineFailure, Failover, Incident
from voicebus.engines.fallback.llm import FallbackLLM
from voicebus.engines.fallback.stt import FallbackSTT
from voicebus.engines.fallback.tts import FallbackTTS
from voicebus.engines.streaming import SpeechChunk, WordTiming

pytestmark = pytest.mark.unit

FAST = Budgets(first_audio_s=0.2, first_token_s=0.2, final_transcript_s=0.3, stall_s=0.2)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_failures_in_window_probes_and_closes() -> None:
    clock = Clock()
    board = BreakerBoard(BreakerSettings(failures=3, window_s=10, open_s=5), clock)
    breaker = board.get("tts", "x")
    breaker.failure()
    clock.now = 11  # the first failure leaves the window
    breaker.failure()
    breaker.failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now = 16.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()
    breaker.failure()  # the probe failed: open again
    assert breaker.state is BreakerState.OPEN
    clock.now = 21.2
    assert breaker.allow()
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert board.get("tts", "x") is breaker
    assert board.get("stt", "x") is not breaker


def test_auth_failure_keeps_the_breaker_open() -> None:
    clock = Clock()
    breaker = BreakerBoard(BreakerSettings(open_s=5, auth_open_s=300), clock).get("llm", "k")
    breaker.failure(auth=True)
    clock.now = 299
    assert not breaker.allow()
    clock.now = 301
    assert breaker.allow()


# -- TTS ---------------------------------------------------------------------------


class FakeTTS:
    """Says each word as 100 ms of audio with its timing; fails as told."""

    def __init__(
        self,
        name: str,
        *,
        fail_after: int | None = None,
        exc: Exception | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.name = name
        self.endpoint = f"{name}-{id(self)}"
        self.fail_after = fail_after
        self.exc = exc or EngineError("boom", retryable=True, kind="closed")
        self.delay_s = delay_s
        self.texts: list[str] = []

    async def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        async for chunk in self.synthesize_timed(text, sample_rate):
            yield chunk.pcm

    async def synthesize_timed(self, text: str, sample_rate: int) -> AsyncIterator[SpeechChunk]:
        self.texts.append(text)
        await asyncio.sleep(self.delay_s)
        for index, word in enumerate(text.split()):
            if self.fail_after is not None and index == self.fail_after:
                raise self.exc
            ms = 100.0 * index
            yield SpeechChunk(bytes(1600), (WordTiming(word, ms, ms + 100),))


def _board() -> BreakerBoard:
    return BreakerBoard(BreakerSettings(failures=2, window_s=60, open_s=60))


async def test_tts_failover_reissues_only_the_words_not_yet_spoken() -> None:
    primary, backup = FakeTTS("a", fail_after=2), FakeTTS("b")
    incidents: list[Incident] = []
    tts = FallbackTTS(
        [primary, backup],
        budgets=FAST,
        report=incidents.append,
        chain=Chain("tts", [primary, backup], _board()),
    )
    chunks = [c async for c in tts.synthesize_timed("one two three four", 8000)]
    assert backup.texts == ["three four"]
    assert [w.word for c in chunks for w in c.words] == ["one", "two", "three", "four"]
    assert [w.start_ms for c in chunks for w in c.words] == [0, 100, 200, 300]
    failure, moved = incidents
    assert isinstance(failure, EngineFailure)
    assert failure.kind == "closed"
    assert isinstance(moved, Failover)
    assert (moved.from_engine, moved.to_engine) == ("a", "b")
    assert moved.reissued == "rest_of_sentence"


async def test_tts_slow_first_audio_moves_on_and_breaker_opens() -> None:
    board = _board()
    primary, backup = FakeTTS("a", delay_s=1.0), FakeTTS("b")
    tts = FallbackTTS([primary, backup], budgets=FAST, chain=Chain("tts", [primary, backup], board))
    for _ in range(2):
        assert len([c async for c in tts.synthesize("hello there", 8000)]) == 2
    assert board.get("tts", primary.endpoint).state is BreakerState.OPEN
    primary.texts.clear()
    assert len([c async for c in tts.synthesize("again", 8000)]) == 1
    assert primary.texts == []  # skipped while open: no waiting on it


async def test_tts_every_engine_failing_raises_the_last_error() -> None:
    a = FakeTTS("a", fail_after=0, exc=EngineAuthError("a: refused"))
    b = FakeTTS("b", fail_after=0)
    tts = FallbackTTS([a, b], budgets=FAST, chain=Chain("tts", [a, b], _board()))
    with pytest.raises(EngineError, match="boom"):
        async for _ in tts.synthesize("x", 8000):
            pass


# -- LLM ---------------------------------------------------------------------------


class FakeLLM:
    def __init__(
        self,
        name: str,
        words: list[str],
        *,
        fail_after: int | None = None,
        exc: Exception | None = None,
    ) -> None:
        self.name = name
        self.endpoint = f"{name}-{id(self)}"
        self.words = words
        self.fail_after = fail_after
        self.exc = exc or EngineError("down", retryable=True, kind="unavailable")
        self.asked: list[list[ChatMessage]] = []

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMChunk]:
        self.asked.append(list(messages))
        for index, word in enumerate(self.words):
            if index == self.fail_after:
                raise self.exc
            yield TextDelta(word)


async def test_llm_failover_reissues_the_turn_and_drops_what_was_already_said() -> None:
    primary = FakeLLM("a", ["Your ", "order ", "is"], fail_after=2)
    backup = FakeLLM("b", ["Your ", "order ", "has ", "shipped."])
    incidents: list[Incident] = []
    llm = FallbackLLM(
        [primary, backup],
        budgets=FAST,
        report=incidents.append,
        chain=Chain("llm", [primary, backup], _board()),
    )
    ask = [ChatMessage("user", "where is it")]
    text = "".join([c.text async for c in llm.stream(ask) if isinstance(c, TextDelta)])
    assert text == "Your order has shipped."
    assert backup.asked[0][-1] == ChatMessage("assistant", "Your order ")
    assert any(isinstance(i, Failover) and i.reissued == "turn" for i in incidents)


async def test_llm_401_reports_auth_and_keeps_the_breaker_open() -> None:
    board = _board()
    primary = FakeLLM("a", ["x"], fail_after=0, exc=EngineAuthError("a: refused the API key"))
    backup = FakeLLM("b", ["fine"])
    incidents: list[Incident] = []
    llm = FallbackLLM(
        [primary, backup],
        budgets=FAST,
        report=incidents.append,
        chain=Chain("llm", [primary, backup], board),
    )
    for _ in range(3):
        assert [c async for c in llm.stream([ChatMessage("user", "hi")])] == [TextDelta("fine")]
    assert len(primary.asked) == 1  # no retry storm
    assert board.get("llm", primary.endpoint).state is BreakerState.OPEN
    assert [i.kind for i in incidents if isinstance(i, EngineFailure)] == ["auth"]


# -- STT ---------------------------------------------------------------------------


class FakeSTT:
    """A segment engine: hears ``bytes`` of audio as the count of non-zero frames."""

    def __init__(self, name: str, *, broken: bool = False) -> None:
        self.name = name
        self.endpoint = f"{name}-{id(self)}"
        self.broken = broken
        self.heard: list[int] = []

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcription:
        if self.broken:
            raise EngineError(f"{self.name}: socket closed", retryable=True, kind="closed")
        self.heard.append(len(pcm16))
        return Transcription(f"{self.name}:{len(pcm16)}", "en", 0.9)


async def test_stt_failover_replays_the_audio_of_the_failed_turn() -> None:
    primary, backup = FakeSTT("a", broken=True), FakeSTT("b")
    incidents: list[Incident] = []
    stt = FallbackSTT([primary, backup], budgets=FAST, report=incidents.append)
    stt._chain = Chain("stt", [primary, backup], _board())
    session = await stt.open(8000)
    session.push(bytes(3200))
    first = session.end_turn()
    session.push(bytes(1600))  # the next turn starts while the first fails over
    second = session.end_turn()
    assert (await asyncio.wait_for(first, 2)).text == "b:3200"
    assert (await asyncio.wait_for(second, 2)).text == "b:1600"
    assert backup.heard == [3200, 1600]
    assert any(isinstance(i, Failover) and i.reissued == "audio" for i in incidents)
    await session.aclose()


async def test_stt_every_engine_failing_fails_the_turn_then_recovers() -> None:
    a, b = FakeSTT("a", broken=True), FakeSTT("b", broken=True)
    stt = FallbackSTT([a, b], budgets=FAST)
    stt._chain = Chain("stt", [a, b], BreakerBoard(BreakerSettings(failures=5)))
    session = await stt.open(8000)
    session.push(bytes(320))
    with pytest.raises(EngineError):
        await asyncio.wait_for(session.end_turn(), 2)
    b.broken = False
    session.push(bytes(640))
    assert (await asyncio.wait_for(session.end_turn(), 2)).text == "b:640"
    await session.aclose()
