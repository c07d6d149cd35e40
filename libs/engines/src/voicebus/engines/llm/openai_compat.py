"""``openai``: any OpenAI-compatible chat-completions server, streamed.

The same engine talks to OpenAI itself and to the local llama.cpp server
(:mod:`voicebus.engines.llm.llama_server`): only ``base_url``, ``model`` and the key
differ. Replies stream as server-sent ``chat.completion.chunk`` events; text becomes
:class:`TextDelta` as it arrives, tool calls are put together across chunks and
yielded once complete.

Upstream failures become :class:`EngineError` with ``retryable`` decided here:
timeouts, connection failures, 408, 429 and 5xx may succeed on retry; other 4xx
will not.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from voicebus.engines.base import (
    LLM,
    NO_CONTEXT,
    ChatMessage,
    EngineContext,
    EngineError,
    LLMChunk,
    Options,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolSpec,
    error_for_status,
)
from voicebus.engines.llm.text_tools import TextToolCallParser
from voicebus.engines.options import OptionReader

NAME: Final = "openai"
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
DEFAULT_MODEL: Final = "gpt-4o-mini"
_ERROR_TEXT_LIMIT: Final = 300

log = logging.getLogger(__name__)


def to_openai_messages(
    messages: Sequence[ChatMessage], *, text_tool_calls: bool = False
) -> list[dict[str, Any]]:
    """The conversation in the chat-completions wire format.

    With ``text_tool_calls`` an assistant's earlier tool calls are written into its
    text as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks, the way
    models that call tools in text (Qwen behind llama.cpp) produced them: the structured
    form reaches such a model with its arguments double-encoded as a JSON string, and
    after seeing that it stops calling tools properly.
    """
    wire: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.role == "tool":
            item["tool_call_id"] = message.tool_call_id or ""
        elif message.name:
            item["name"] = message.name
        if message.tool_calls and text_tool_calls:
            blocks = [
                "<tool_call>\n"
                + json.dumps({"name": call.name, "arguments": dict(call.arguments)})
                + "\n</tool_call>"
                for call in message.tool_calls
            ]
            item["content"] = "\n".join([message.content, *blocks] if message.content else blocks)
        elif message.tool_calls:
            if not message.content:
                # Optional with tool calls; llama-cpp-python's server refuses null here.
                del item["content"]
            item["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
                }
                for call in message.tool_calls
            ]
        wire.append(item)
    return wire


def to_openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Tool specs in the chat-completions wire format."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": dict(tool.parameters),
            },
        }
        for tool in tools
    ]


@dataclass
class _PendingCall:
    """A tool call whose pieces are still arriving."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def add(self, delta: Mapping[str, Any]) -> None:
        if delta.get("id"):
            self.id = str(delta["id"])
        function = delta.get("function") or {}
        if function.get("name"):
            self.name += str(function["name"])
        if function.get("arguments"):
            self.arguments.append(str(function["arguments"]))

    def complete(self) -> ToolCall:
        if not self.name:
            raise EngineError(f"{NAME}: the model sent a tool call without a name", retryable=True)
        raw = "".join(self.arguments).strip() or "{}"
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            raise EngineError(
                f"{NAME}: arguments of tool {self.name!r} are not a JSON object", retryable=True
            )
        return ToolCall(self.id or f"call_{uuid.uuid4().hex[:24]}", self.name, arguments)


def _error_detail(body: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the body itself (shortened)."""
    try:
        parsed = json.loads(body)
        detail = parsed["error"]["message"] if isinstance(parsed.get("error"), dict) else parsed
    except (ValueError, KeyError, TypeError, AttributeError):
        detail = body.decode("utf-8", "replace")
    return str(detail)[:_ERROR_TEXT_LIMIT]


class OpenAICompatLLM:
    """Streams chat completions from an OpenAI-compatible server.

    Args:
        base_url: The API root, up to and including ``/v1``.
        model: Model name the server knows.
        api_key: Bearer key; none for local servers. Never logged or shown in ``repr``.
        temperature: Sampling temperature.
        max_tokens: Longest reply, in tokens.
        timeout_s: Longest wait for the server to connect or to send the next piece.
        text_tool_calls: Also read ``<tool_call>{...}</tool_call>`` blocks in the reply
            text as tool calls (Hermes-style models behind servers that do not parse them,
            such as the local llama.cpp server).
        prefill: Make :meth:`prefill` send the prompt ahead of time (a one-token request).
            Worth it for servers that reuse the previous prompt's state (llama.cpp);
            off by default, since elsewhere it only costs a request.
        json_mode: Ask for one JSON object (``response_format: json_object``; llama.cpp's
            server enforces it with a grammar). For structured requests such as post-call
            analysis, never for spoken replies.
        transport: An httpx transport (tests); the network by default.
    """

    name = NAME

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        temperature: float = 0.5,
        max_tokens: int = 256,
        timeout_s: float = 30.0,
        text_tool_calls: bool = False,
        prefill: bool = False,
        json_mode: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.text_tool_calls = text_tool_calls
        self.prefill_enabled = prefill
        self.json_mode = json_mode
        self.__api_key = api_key
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatLLM(base_url={self.base_url!r}, model={self.model!r})"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"Accept": "text/event-stream"}
            if self.__api_key:
                headers["Authorization"] = f"Bearer {self.__api_key}"
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 10.0)),
                transport=self._transport,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def request_body(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> dict[str, Any]:
        """The JSON body of one streamed chat-completions request."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages, text_tool_calls=self.text_tool_calls),
            "stream": True,
            "stream_options": {"include_usage": True},  # a last chunk with token counts
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if tools:
            body["tools"] = to_openai_tools(tools)
            body["tool_choice"] = "auto"
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    async def prefill(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> None:
        """Send the prompt with ``max_tokens=1`` so the server caches its state (if enabled).

        A failure is logged, never raised: the next real request works without it.
        """
        if not self.prefill_enabled:
            return
        body = {**self.request_body(messages, tools), "stream": False, "max_tokens": 1}
        body.pop("stream_options")  # allowed on streamed requests only
        try:
            response = await self._http().post("/chat/completions", json=body)
        except httpx.HTTPError:
            log.warning("llm prefill failed", extra={"engine": NAME})
            return
        if response.status_code >= 400:
            log.warning("llm prefill refused", extra={"status": response.status_code})

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMChunk]:
        """Yield reply text as it is generated, then any tool calls.

        Raises:
            EngineError: the server failed or sent something unreadable.
        """
        body = self.request_body(messages, tools)
        try:
            async with self._http().stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    raw = await response.aread()
                    raise error_for_status(NAME, response.status_code, _error_detail(raw))
                async for chunk in _parse_events(response, self.text_tool_calls):
                    yield chunk
        except httpx.TimeoutException as exc:
            raise EngineError(
                f"{NAME}: the server timed out", retryable=True, kind="timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise EngineError(
                f"{NAME}: cannot reach the server: {exc}", retryable=True, kind="unavailable"
            ) from exc


async def _parse_events(response: httpx.Response, text_tool_calls: bool) -> AsyncIterator[LLMChunk]:
    """Server-sent ``chat.completion.chunk`` events → text deltas, then tool calls."""
    pending: dict[int, _PendingCall] = {}
    usage: TokenUsage | None = None
    text_tools = TextToolCallParser() if text_tool_calls else None
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments, event names
        data = line[5:].strip()
        if data == "[DONE]":
            break
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            raise EngineError(
                f"{NAME}: the server sent an unreadable event", retryable=True, kind="protocol"
            )
        if "error" in event:
            detail = _error_detail(data.encode())
            raise EngineError(f"{NAME}: the server failed mid-reply: {detail}", retryable=True)
        usage = _usage(event.get("usage")) or usage
        for choice in event.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                content = str(delta["content"])
                if text_tools is None:
                    yield TextDelta(content)
                else:
                    spoken, calls = text_tools.feed(content)
                    for item in _spoken_then_calls(spoken, calls):
                        yield item
            for position, call in enumerate(delta.get("tool_calls") or []):
                index = int(call.get("index", position))
                pending.setdefault(index, _PendingCall()).add(call)
    if text_tools is not None:
        for item in _spoken_then_calls(*text_tools.finish()):
            yield item
    for index in sorted(pending):
        yield pending[index].complete()
    if usage is not None:
        yield usage


def _usage(value: object) -> TokenUsage | None:
    """``usage`` of a chunk (``prompt_tokens``, ``completion_tokens``), if it has one."""
    if not isinstance(value, dict):
        return None
    tokens_in, tokens_out = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(tokens_in, int) or not isinstance(tokens_out, int):
        return None
    return TokenUsage(max(tokens_in, 0), max(tokens_out, 0))


def _spoken_then_calls(spoken: str, calls: list[ToolCall]) -> list[LLMChunk]:
    chunks: list[LLMChunk] = [TextDelta(spoken)] if spoken else []
    chunks.extend(calls)
    return chunks


def create(options: Options, context: EngineContext = NO_CONTEXT) -> OpenAICompatLLM:
    """Factory for the registry.

    Options: ``base_url``, ``model``, ``api_key`` or ``api_key_env`` (the name of an
    environment variable holding the key), ``temperature``, ``max_tokens``, ``timeout_s``,
    ``text_tool_calls``, ``prefill``, ``json_mode``.
    """
    read = OptionReader(NAME, options)
    api_key = read.optional_text("api_key")
    key_env = read.optional_text("api_key_env")
    if api_key is None and key_env:
        api_key = os.environ.get(key_env)
        if not api_key:
            raise EngineError(f"{NAME}: environment variable {key_env} holds no API key")
    engine = OpenAICompatLLM(
        base_url=read.text("base_url", DEFAULT_BASE_URL),
        model=read.text("model", DEFAULT_MODEL),
        api_key=api_key or context.api_key,
        temperature=read.number("temperature", 0.5, low=0.0, high=2.0),
        max_tokens=read.integer("max_tokens", 256, low=1, high=32_768),
        timeout_s=read.number("timeout_s", 30.0, low=0.1, high=600.0),
        text_tool_calls=read.flag("text_tool_calls", False),
        prefill=read.flag("prefill", False),
        json_mode=read.flag("json_mode", False),
    )
    read.finish()
    return engine


def register() -> None:
    """Add ``openai`` to the LLM registry."""
    LLM.register(NAME, create)
