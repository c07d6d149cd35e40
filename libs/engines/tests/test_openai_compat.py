"""The ``openai`` engine against a stand-in server on loopback speaking the real wire format."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.responses import JSONResponse, StreamingResponse

from voicebus.engines.base import (
    LLM,
    ChatMessage,
    EngineError,
    LLMChunk,
    LLMEngine,
    Prefillable,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolSpec,
)
from voicebus.engines.builtin import load_builtin_engines
from voicebus.engines.llm import openai_compat
from voicebus.engines.llm.openai_compat import OpenAICompatLLM, to_openai_messages

pytestmark = pytest.mark.component

ORDER_TOOL = ToolSpec(
    "check_order_status",
    "Look up an order",
    {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
)
ASK = [ChatMessage("system", "You are brief."), ChatMessage("user", "Where is order 1234?")]


def chunk_event(delta: dict[str, Any], finish: str | None = None) -> str:
    """One ``chat.completion.chunk`` server-sent event."""
    body = {
        "id": "chatcmpl-standin",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "standin",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


def sse(events: list[str]) -> StreamingResponse:
    """A streamed answer made of the given events, then ``[DONE]``."""

    async def body() -> AsyncIterator[str]:
        for event in events:
            yield event
            await asyncio.sleep(0)
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")


def text_reply(*pieces: str) -> Any:
    events = [chunk_event({"role": "assistant", "content": ""})]
    events += [chunk_event({"content": p}) for p in pieces]
    events.append(chunk_event({}, finish="stop"))
    return lambda _body: sse(events)


def tool_piece(index: int, **fields: Any) -> dict[str, Any]:
    if "id" in fields:
        fields["type"] = "function"
    return {"tool_calls": [{"index": index, **fields}]}


SPLIT_TOOL_CALL = [
    chunk_event({"role": "assistant", "content": None}),
    chunk_event(tool_piece(0, id="call_abc", function={"name": "check_order_status"})),
    chunk_event(tool_piece(0, function={"arguments": '{"order'})),
    chunk_event(tool_piece(0, function={"arguments": '_id": "12'})),
    chunk_event(tool_piece(0, function={"arguments": '34"}'})),
    chunk_event(tool_piece(1, id="call_def", function={"name": "end_call", "arguments": "{}"})),
    chunk_event({}, finish="tool_calls"),
]


async def collect(engine: OpenAICompatLLM, messages: list[ChatMessage] = ASK,
                  tools: list[ToolSpec] | None = None) -> list[LLMChunk]:  # fmt: skip
    try:
        return [c async for c in engine.stream(messages, tools or [])]
    finally:
        await engine.aclose()


def engine_for(standin: Any, **options: Any) -> OpenAICompatLLM:
    return openai_compat.create({"base_url": standin.url, "model": "standin-model", **options})


async def test_text_streams_as_deltas(standin: Any) -> None:
    standin.script = text_reply("Your order ", "shipped ", "yesterday.")
    chunks = await collect(engine_for(standin))
    assert chunks == [TextDelta("Your order "), TextDelta("shipped "), TextDelta("yesterday.")]


async def test_token_counts_of_the_last_chunk_come_after_the_reply(standin: Any) -> None:
    events = [chunk_event({"content": "Shipped."}), chunk_event({}, finish="stop")]
    usage = {"choices": [], "usage": {"prompt_tokens": 812, "completion_tokens": 3}}
    events.append(f"data: {json.dumps(usage)}\n\n")
    standin.script = lambda _body: sse(events)
    chunks = await collect(engine_for(standin))
    assert chunks == [TextDelta("Shipped."), TokenUsage(812, 3)]
    assert standin.requests[0]["stream_options"] == {"include_usage": True}


async def test_tool_call_split_across_chunks_is_put_together(standin: Any) -> None:
    standin.script = lambda _body: sse(SPLIT_TOOL_CALL)
    chunks = await collect(engine_for(standin), tools=[ORDER_TOOL])
    assert chunks == [
        ToolCall("call_abc", "check_order_status", {"order_id": "1234"}),
        ToolCall("call_def", "end_call", {}),
    ]


async def test_request_carries_the_conversation_tools_and_settings(standin: Any) -> None:
    standin.script = text_reply("ok")
    call = ToolCall("call_abc", "check_order_status", {"order_id": "1234"})
    messages = [
        *ASK,
        ChatMessage("assistant", "", tool_calls=[call]),
        ChatMessage("tool", '{"status": "shipped"}', tool_call_id="call_abc"),
    ]
    engine = engine_for(standin, temperature=0.2, max_tokens=64, api_key="sk-test-secret")
    await collect(engine, messages, [ORDER_TOOL])
    body, headers = standin.requests[0], standin.headers[0]
    assert body["model"] == "standin-model"
    assert body["stream"] is True
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 64
    assert body["messages"][:2] == [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": "Where is order 1234?"},
    ]
    assert body["messages"][2] == {
        "role": "assistant",
        "tool_calls": [{"id": "call_abc", "type": "function",
                        "function": {"name": "check_order_status",
                                     "arguments": '{"order_id": "1234"}'}}],
    }  # fmt: skip
    assert body["messages"][3] == {
        "role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_abc"
    }  # fmt: skip
    assert body["tools"] == [{"type": "function", "function": {
        "name": "check_order_status", "description": "Look up an order",
        "parameters": dict(ORDER_TOOL.parameters)}}]  # fmt: skip
    assert headers["authorization"] == "Bearer sk-test-secret"


async def test_no_key_sends_no_authorization(standin: Any) -> None:
    standin.script = text_reply("ok")
    await collect(engine_for(standin))
    assert "authorization" not in standin.headers[0]
    assert "tools" not in standin.requests[0]


async def test_key_from_the_environment(standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VB_TEST_LLM_KEY", "sk-from-env")
    standin.script = text_reply("ok")
    await collect(engine_for(standin, api_key_env="VB_TEST_LLM_KEY"))
    assert standin.headers[0]["authorization"] == "Bearer sk-from-env"


def test_the_key_never_shows(standin: Any) -> None:
    engine = engine_for(standin, api_key="sk-test-secret")
    assert "sk-test-secret" not in repr(engine)
    assert "sk-test-secret" not in str(vars(engine).keys())


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
async def test_http_errors_map_to_engine_errors(standin: Any, status: int, retryable: bool) -> None:
    standin.script = lambda _body: JSONResponse(
        {"error": {"message": f"failure {status}", "type": "x"}}, status_code=status
    )
    with pytest.raises(EngineError, match=f"{status}: failure {status}") as caught:
        await collect(engine_for(standin))
    assert caught.value.retryable is retryable


async def test_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        engine = openai_compat.create({"base_url": f"http://127.0.0.1:{port}/v1"})
        with pytest.raises(EngineError, match="cannot reach") as caught:
            await collect(engine)
    assert caught.value.retryable


async def test_a_silent_server_times_out(standin: Any) -> None:
    async def stall() -> AsyncIterator[str]:
        await asyncio.sleep(5)
        yield "data: [DONE]\n\n"

    standin.script = lambda _body: StreamingResponse(stall(), media_type="text/event-stream")
    with pytest.raises(EngineError, match="timed out") as caught:
        await collect(engine_for(standin, timeout_s=0.3))
    assert caught.value.retryable


async def test_error_event_mid_stream(standin: Any) -> None:
    events = [chunk_event({"content": "Hel"}), 'data: {"error": {"message": "overloaded"}}\n\n']
    standin.script = lambda _body: sse(events)
    seen: list[LLMChunk] = []

    async def consume() -> None:
        async for chunk in engine_for(standin).stream(ASK):
            seen.append(chunk)

    with pytest.raises(EngineError, match="overloaded"):
        await consume()
    assert seen == [TextDelta("Hel")]


async def test_tool_arguments_that_are_not_json(standin: Any) -> None:
    events = [chunk_event(tool_piece(0, id="c1", function={"name": "f", "arguments": "{oops"}))]
    standin.script = lambda _body: sse(events)
    with pytest.raises(EngineError, match="not a JSON object") as caught:
        await collect(engine_for(standin), tools=[ORDER_TOOL])
    assert caught.value.retryable


async def test_tool_calls_written_as_text_are_parsed_when_asked(standin: Any) -> None:
    pieces = ["Let me check. <tool", '_call>\n{"name": "check_order_status", ',
              '"arguments": {"order_id": "1234"}}\n</tool_', "call>"]  # fmt: skip
    standin.script = text_reply(*pieces)
    chunks = await collect(engine_for(standin, text_tool_calls=True), tools=[ORDER_TOOL])
    assert chunks[0] == TextDelta("Let me check. ")
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "Let me check. "
    calls = [c for c in chunks if isinstance(c, ToolCall)]
    assert [(c.name, dict(c.arguments)) for c in calls] == [
        ("check_order_status", {"order_id": "1234"})
    ]
    standin.script = text_reply(*pieces)
    plain = await collect(engine_for(standin), tools=[ORDER_TOOL])
    assert all(isinstance(c, TextDelta) for c in plain)


def test_registry_builds_it_and_it_fits_the_interface() -> None:
    load_builtin_engines()
    engine = LLM.create("openai", {"base_url": "http://127.0.0.1:9/v1/", "model": "m"})
    assert isinstance(engine, LLMEngine)
    assert isinstance(engine, OpenAICompatLLM)
    assert engine.base_url == "http://127.0.0.1:9/v1"


def test_json_mode_asks_for_one_json_object() -> None:
    messages = [ChatMessage(role="user", content="Analyse this call.")]
    plain = openai_compat.create({"model": "m"}).request_body(messages)
    assert "response_format" not in plain
    json_mode = openai_compat.create({"model": "m", "json_mode": True}).request_body(messages)
    assert json_mode["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": 5}, "temperature"),
        ({"modle": "x"}, "unknown option"),
        ({"api_key_env": "VB_TEST_SURELY_UNSET_KEY"}, "holds no API key"),
        ({"text_tool_calls": "yes"}, "true or false"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(EngineError, match=message):
        openai_compat.create(options)


def test_earlier_tool_calls_go_back_as_text_for_text_tool_models() -> None:
    call = ToolCall("call_1", "check_order_status", {"order_id": "1234"})
    history = [
        ChatMessage(role="user", content="Where is order 1234?"),
        ChatMessage(role="assistant", tool_calls=[call]),
        ChatMessage(role="tool", content='{"status": "shipped"}', tool_call_id="call_1"),
    ]
    structured = to_openai_messages(history)
    assert structured[1]["tool_calls"][0]["function"]["arguments"] == '{"order_id": "1234"}'
    as_text = to_openai_messages(history, text_tool_calls=True)
    assert "tool_calls" not in as_text[1]
    block = as_text[1]["content"]
    assert block.startswith("<tool_call>")
    assert block.endswith("</tool_call>")
    inner = json.loads(block.removeprefix("<tool_call>").removesuffix("</tool_call>"))
    assert inner == {"name": "check_order_status", "arguments": {"order_id": "1234"}}
    assert as_text[2] == structured[2]


async def test_prefill_sends_the_prompt_for_one_token_only_when_enabled(standin: Any) -> None:
    standin.script = lambda _body: JSONResponse({"choices": []})
    quiet = engine_for(standin)
    assert isinstance(quiet, Prefillable)
    await quiet.prefill(ASK, [ORDER_TOOL])
    assert standin.requests == []
    engine = engine_for(standin, prefill=True)
    await engine.prefill(ASK, [ORDER_TOOL])
    await engine.aclose()
    (body,) = standin.requests
    assert body["stream"] is False
    assert "stream_options" not in body
    assert body["max_tokens"] == 1
    assert body["messages"] == to_openai_messages(ASK)
    assert body["tools"][0]["function"]["name"] == "check_order_status"


async def test_a_failed_prefill_is_not_an_error(standin: Any) -> None:
    standin.script = lambda _body: JSONResponse({"error": "busy"}, status_code=503)
    engine = engine_for(standin, prefill=True)
    await engine.prefill(ASK)  # logged, not raised
    await engine.aclose()
    unreachable = openai_compat.create({"base_url": "http://127.0.0.1:9/v1", "prefill": True})
    await unreachable.prefill(ASK)
    await unreachable.aclose()
