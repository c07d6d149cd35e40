"""Gemini against its stand-in: alternating contents, system instruction, function parts,
a refused key (400 API_KEY_INVALID), failures mid-stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voicebus.devkit.vendors import Scenario, VendorStandIn
from voicebus.devkit.vendors.scenarios import TEST_KEY
from voicebus.engines.base import (
    ChatMessage,
    EngineAuthError,
    EngineContext,
    EngineError,
    LLMChunk,
    TextDelta,
    ToolCall,
)
from voicebus.engines.llm import gemini

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

HISTORY = [
    ChatMessage("system", "Be brief."),
    ChatMessage("assistant", "Hi, this is Acme."),
    ChatMessage("user", "Where is order 12?"),
    ChatMessage("assistant", "", (ToolCall("c1", "check_order", {"order_id": "12"}),)),
    ChatMessage("tool", '{"status": "shipped"}', tool_call_id="c1", name="check_order"),
    ChatMessage("assistant", "It has shipped."),
    ChatMessage("user", "Thanks"),
]


def test_history_alternates_with_function_parts() -> None:
    system, contents = gemini.to_gemini(HISTORY)
    assert system == "Be brief."
    assert [c["role"] for c in contents] == [
        "user",
        "model",
        "user",
        "model",
        "user",
        "model",
        "user",
    ]
    assert contents[0]["parts"] == [{"text": "(The call has started.)"}]
    assert contents[3]["parts"] == [
        {"functionCall": {"name": "check_order", "args": {"order_id": "12"}}}
    ]
    assert contents[4]["parts"] == [
        {"functionResponse": {"name": "check_order", "response": {"status": "shipped"}}}
    ]


@pytest.fixture(scope="module")
async def vendors() -> AsyncIterator[VendorStandIn]:
    async with VendorStandIn() as server:
        yield server


def _engine(
    vendors: VendorStandIn, scenario: Scenario = Scenario.OK, key: str = TEST_KEY
) -> gemini.GeminiLLM:
    return gemini.create(
        {"base_url": vendors.base_url(scenario)},
        EngineContext(api_key=key, allow_private_urls=True),
    )


async def _drain(stream: AsyncIterator[LLMChunk], into: list[LLMChunk]) -> None:
    async for chunk in stream:
        into.append(chunk)


async def test_streams_text(vendors: VendorStandIn) -> None:
    engine = _engine(vendors)
    got: list[LLMChunk] = []
    await _drain(engine.stream(HISTORY), got)
    await engine.aclose()
    text = "".join(c.text for c in got if isinstance(c, TextDelta))
    assert text == "You said Thanks. Anything else?"
    record = vendors.recorded("gemini")[-1]
    assert record.path.endswith("/models/gemini-2.0-flash:streamGenerateContent")
    assert record.body[0]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


async def test_refused_key_is_auth(vendors: VendorStandIn) -> None:
    engine = _engine(vendors, key="wrong")
    with pytest.raises(EngineAuthError, match="400"):
        await _drain(engine.stream(HISTORY), [])
    await engine.aclose()


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [
        (Scenario.ERROR_MID, "unavailable"),
        (Scenario.MALFORMED, "protocol"),
        (Scenario.CLOSE_MID, "closed"),
    ],
)
async def test_broken_mid_stream(vendors: VendorStandIn, scenario: Scenario, kind: str) -> None:
    engine = _engine(vendors, scenario)
    got: list[LLMChunk] = []
    with pytest.raises(EngineError) as failed:
        await _drain(engine.stream(HISTORY), got)
    assert got
    assert failed.value.kind == kind
    await engine.aclose()
