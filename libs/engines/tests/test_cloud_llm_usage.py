"""Token counts of the Anthropic and Gemini engines, from their vendors' stand-ins: what the
usage metering adds up per tenant and engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voicebus.devkit.vendors import VendorStandIn
from voicebus.devkit.vendors.scenarios import TEST_KEY
from voicebus.engines.base import ChatMessage, EngineContext, LLMEngine, TextDelta, TokenUsage
from voicebus.engines.llm import anthropic, gemini

pytestmark = pytest.mark.component

SHORT = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hello there")]
LONG = [*SHORT[:1], ChatMessage("user", "Hello there, I would like to know where my order is")]


@pytest.fixture(scope="module")
async def vendors() -> AsyncIterator[VendorStandIn]:
    async with VendorStandIn(reply=lambda _heard: "Your order shipped.") as server:
        yield server


async def _usage(engine: LLMEngine, messages: list[ChatMessage]) -> tuple[str, TokenUsage]:
    chunks = [c async for c in engine.stream(messages)]
    text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
    usages = [c for c in chunks if isinstance(c, TokenUsage)]
    assert len(usages) == 1
    assert chunks[-1] is usages[0]  # after the reply, as consumers expect
    return text, usages[0]


@pytest.mark.parametrize("module", [anthropic, gemini], ids=["anthropic", "gemini"])
async def test_token_counts_follow_the_reply_and_grow_with_the_prompt(
    vendors: VendorStandIn, module: object
) -> None:
    context = EngineContext(api_key=TEST_KEY, allow_private_urls=True)
    engine = module.create({"base_url": vendors.base_url()}, context)  # type: ignore[attr-defined]
    try:
        text, short = await _usage(engine, SHORT)
        _, long = await _usage(engine, LONG)
    finally:
        await engine.aclose()
    assert text == "Your order shipped."
    assert short.tokens_out == 3  # the stand-ins count a word as a token
    assert 0 < short.tokens_in < long.tokens_in
