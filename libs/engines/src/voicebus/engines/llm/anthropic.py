"""``anthropic``: Anthropic's Messages API, streamed (server-sent events).

Text deltas are yielded as they arrive; ``tool_use`` blocks are put together from
their ``input_json_delta`` pieces and yielded when the block stops. The history is
made to alternate (:mod:`voicebus.engines.llm.roles`); tool results go back as
``tool_result`` blocks of the user's turn.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from voicebus.engines.base import (
    LLM,
    ChatMessage,
    EngineContext,
    EngineError,
    LLMChunk,
    Options,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolSpec,
)
from voicebus.engines.cloud._wire import (
    endpoint_id,
    http_url,
    raise_for_response,
    require_key,
    transport_error,
)
from voicebus.engines.llm.roles import alternate, split_system
from voicebus.engines.options import OptionReader
from voicebus.engines.urls import check_resolved, check_url

NAME: Final = "anthropic"
DEFAULT_URL: Final = "https://api.anthropic.com"
API_VERSION: Final = "2023-06-01"


def to_anthropic(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """(system, messages) in the Messages API's wire format, alternating."""
    system, rest = split_system(messages)
    wire: list[dict[str, Any]] = []
    for turn in alternate(rest):
        blocks: list[dict[str, Any]] = []
        for message in turn.messages:
            if message.role == "tool":
                blocks.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": message.tool_call_id or "",
                        "content": message.content,
                    }
                )
                continue
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": dict(call.arguments),
                    }
                )
        wire.append({"role": turn.side, "content": blocks})
    return system, wire


@dataclass(slots=True)
class _Block:
    kind: str
    id: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list)


class AnthropicLLM:
    """Claude models, streamed.

    Args:
        api_key: the tenant's key (``x-api-key``).
        base_url: API root (a stand-in's URL in tests).
        model: model name.
        temperature: sampling temperature.
        max_tokens: longest reply.
        timeout_s: connect and read budget.
        allow_private: allow loopback/private hosts.
        transport: an httpx transport (tests).
    """

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_URL,
        model: str = "claude-3-5-haiku-latest",
        temperature: float = 0.5,
        max_tokens: int = 256,
        timeout_s: float = 30.0,
        allow_private: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = http_url(base_url).rstrip("/")
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.allow_private = allow_private
        self.endpoint = endpoint_id(NAME, self.base_url, api_key)
        headers = {"anthropic-version": API_VERSION, "accept": "text/event-stream"}
        if api_key:
            headers["x-api-key"] = api_key
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"AnthropicLLM(base_url={self.base_url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    def request_body(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> dict[str, Any]:
        """The JSON body of one streamed request."""
        system, wire = to_anthropic(messages)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "messages": wire,
            "stream": True,
        }
        if system:
            body["system"] = system
        if tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                for t in tools
            ]
        return body

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMChunk]:
        """Yield text as it streams, and each tool call once complete.

        Raises:
            EngineError: refused (401 → auth), unreachable, or a malformed stream.
        """
        await check_resolved(NAME, self.base_url, allow_private=self.allow_private)
        body = self.request_body(messages, tools)
        try:
            async with self._client.stream("POST", "/v1/messages", json=body) as response:
                await raise_for_response(NAME, response)
                async for chunk in _events(response):
                    yield chunk
        except httpx.HTTPError as exc:
            raise transport_error(NAME, exc) from exc


def _count(usage: object, *names: str) -> int | None:
    """The sum of the named token counts of a ``usage`` object, if it has any of them."""
    if not isinstance(usage, dict):
        return None
    found = [usage[n] for n in names if isinstance(usage.get(n), int)]
    return sum(found) if found else None


_INPUT_COUNTS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


async def _events(response: httpx.Response) -> AsyncIterator[LLMChunk]:
    blocks: dict[int, _Block] = {}
    stopped = False
    # Input tokens come with message_start (cache reads and writes are input too); the
    # output count of message_delta is cumulative, so the last one is the total.
    tokens_in: int | None = None
    tokens_out: int | None = None
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:].strip())
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            raise EngineError(
                f"{NAME}: the vendor sent a malformed event", retryable=True, kind="protocol"
            )
        kind = event.get("type")
        if kind == "error":
            error = event.get("error") or {}
            detail = str(error.get("message", "error"))[:200] if isinstance(error, dict) else ""
            overloaded = isinstance(error, dict) and error.get("type") == "overloaded_error"
            raise EngineError(
                f"{NAME}: the vendor failed mid-reply: {detail}",
                retryable=True,
                kind="unavailable" if overloaded else "protocol",
            )
        index = int(event.get("index", 0)) if isinstance(event.get("index", 0), int) else 0
        if kind == "message_start":
            message = event.get("message") or {}
            usage = message.get("usage") if isinstance(message, dict) else None
            tokens_in = _count(usage, *_INPUT_COUNTS)
        elif kind == "message_delta":
            tokens_out = _count(event.get("usage"), "output_tokens") or tokens_out
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            blocks[index] = _Block(
                str(block.get("type")), str(block.get("id", "")), str(block.get("name", ""))
            )
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                yield TextDelta(str(delta["text"]))
            elif delta.get("type") == "input_json_delta" and index in blocks:
                blocks[index].parts.append(str(delta.get("partial_json", "")))
        elif kind == "content_block_stop":
            block_done = blocks.pop(index, None)
            if block_done is not None and block_done.kind == "tool_use":
                yield _tool_call(block_done)
        elif kind == "message_stop":
            stopped = True
            break
    if stopped and tokens_in is not None and tokens_out is not None:
        yield TokenUsage(tokens_in, tokens_out)
    if not stopped:
        raise EngineError(
            f"{NAME}: the stream ended before message_stop", retryable=True, kind="closed"
        )


def _tool_call(block: _Block) -> ToolCall:
    raw = "".join(block.parts).strip() or "{}"
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict) or not block.name:
        raise EngineError(
            f"{NAME}: a tool call's input is not a JSON object", retryable=True, kind="protocol"
        )
    return ToolCall(block.id or f"toolu_{block.name}", block.name, arguments)


def create(options: Options, context: EngineContext) -> AnthropicLLM:
    """Factory: options ``model``, ``base_url``, ``temperature``, ``max_tokens``, ``timeout_s``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    model = read.text("model", "claude-3-5-haiku-latest")
    if not model.startswith("claude-"):
        raise EngineError(
            f"{NAME}: option 'model' is {model!r}; Anthropic models start with 'claude-'",
            kind="config",
        )
    engine = AnthropicLLM(
        api_key=context.api_key,
        base_url=base_url,
        model=model,
        temperature=read.number("temperature", 0.5, low=0.0, high=1.0),
        max_tokens=read.integer("max_tokens", 256, low=1, high=8192),
        timeout_s=read.number("timeout_s", 30.0, low=0.1, high=600.0),
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def register() -> None:
    """Add ``anthropic`` to the LLM registry."""
    LLM.register(NAME, create)
