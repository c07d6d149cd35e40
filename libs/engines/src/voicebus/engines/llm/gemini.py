"""``gemini``: Google's Gemini API, natively (``streamGenerateContent`` over server-sent events).

Gemini wants ``contents`` to alternate ``user`` and ``model`` turns starting with the
user (:mod:`voicebus.engines.llm.roles` merges and pads the agent's history);
system messages become ``systemInstruction``; tool calls are ``functionCall`` parts
and tool results ``functionResponse`` parts of the user's turn. Every streamed
chunk is a ``GenerateContentResponse``; text parts are yielded as they come,
function calls as they complete (Gemini sends each whole). A refused key comes
back as 400 ``API_KEY_INVALID`` (or 401/403): all are authentication failures.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import httpx

from voicebus.engines.base import (
    LLM,
    ChatMessage,
    EngineAuthError,
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
from voicebus.engines.cloud._wire import endpoint_id, http_url, require_key, transport_error
from voicebus.engines.llm.roles import alternate, split_system
from voicebus.engines.options import OptionReader
from voicebus.engines.urls import check_resolved, check_url

NAME: Final = "gemini"
DEFAULT_URL: Final = "https://generativelanguage.googleapis.com"


def _response_object(content: str) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except (ValueError, TypeError):
        value = None
    return value if isinstance(value, dict) else {"result": content}


def to_gemini(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """(system instruction, contents) in the Gemini wire format, alternating."""
    system, rest = split_system(messages)
    contents: list[dict[str, Any]] = []
    for turn in alternate(rest):
        parts: list[dict[str, Any]] = []
        for message in turn.messages:
            if message.role == "tool":
                parts.append(
                    {
                        "functionResponse": {
                            "name": message.name or "tool",
                            "response": _response_object(message.content),
                        }
                    }
                )
                continue
            if message.content:
                parts.append({"text": message.content})
            for call in message.tool_calls:
                parts.append({"functionCall": {"name": call.name, "args": dict(call.arguments)}})
        contents.append({"role": "model" if turn.side == "assistant" else "user", "parts": parts})
    return system, contents


class GeminiLLM:
    """Gemini models, streamed.

    Args:
        api_key: the tenant's key (``x-goog-api-key``).
        base_url: API root (a stand-in's URL in tests).
        model: model name.
        temperature: sampling temperature.
        max_tokens: longest reply (``maxOutputTokens``).
        timeout_s: connect and read budget.
        allow_private: allow loopback/private hosts.
    """

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_URL,
        model: str = "gemini-2.0-flash",
        temperature: float = 0.5,
        max_tokens: int = 256,
        timeout_s: float = 30.0,
        allow_private: bool = False,
    ) -> None:
        self.base_url = http_url(base_url).rstrip("/")
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.allow_private = allow_private
        self.endpoint = endpoint_id(NAME, self.base_url, api_key)
        headers = {"accept": "text/event-stream"}
        if api_key:
            headers["x-goog-api-key"] = api_key
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        )

    def __repr__(self) -> str:
        return f"GeminiLLM(base_url={self.base_url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    def request_body(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> dict[str, Any]:
        """The JSON body of one streamed request."""
        system, contents = to_gemini(messages)
        body: dict[str, Any] = {
            "contents": contents,
            "generationConfig": {
                "temperature": self.temperature,
                "maxOutputTokens": self.max_tokens,
            },
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        if tools:
            body["tools"] = [
                {
                    "functionDeclarations": [
                        {
                            "name": t.name,
                            "description": t.description,
                            "parameters": dict(t.parameters),
                        }
                        for t in tools
                    ]
                }
            ]
        return body

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMChunk]:
        """Yield text as it streams, and each function call.

        Raises:
            EngineError: refused (a bad key → auth), unreachable, or a malformed stream.
        """
        await check_resolved(NAME, self.base_url, allow_private=self.allow_private)
        path = f"/v1beta/models/{self.model}:streamGenerateContent"
        body = self.request_body(messages, tools)
        try:
            async with self._client.stream(
                "POST", path, params={"alt": "sse"}, json=body
            ) as response:
                if response.status_code >= 400:
                    raise _refusal(response.status_code, await response.aread())
                async for chunk in _chunks(response):
                    yield chunk
        except httpx.HTTPError as exc:
            raise transport_error(NAME, exc) from exc


def _refusal(status: int, raw: bytes) -> EngineError:
    text = raw.decode("utf-8", "replace")
    try:
        error = json.loads(text).get("error", {})
        detail = str(error.get("message", ""))[:200]
    except (ValueError, AttributeError):
        detail = text[:200]
    if status == 400 and ("API_KEY_INVALID" in text or "API key not valid" in text):
        return EngineAuthError(f"{NAME}: the vendor refused the API key: answered 400: {detail}")
    return error_for_status(NAME, status, detail)


def _usage(event: dict[str, Any]) -> TokenUsage | None:
    """``usageMetadata`` of a chunk (prompt and candidate counts), if it has one."""
    meta = event.get("usageMetadata")
    if not isinstance(meta, dict):
        return None
    prompt, reply = meta.get("promptTokenCount"), meta.get("candidatesTokenCount", 0)
    if not isinstance(prompt, int) or not isinstance(reply, int):
        return None
    return TokenUsage(max(prompt, 0), max(reply, 0))


async def _chunks(response: httpx.Response) -> AsyncIterator[LLMChunk]:
    finished = False
    usage: TokenUsage | None = None  # every chunk may carry the counts so far: keep the last
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:].strip())
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            raise EngineError(
                f"{NAME}: the vendor sent a malformed chunk", retryable=True, kind="protocol"
            )
        if "error" in event:
            detail = str((event.get("error") or {}).get("message", "error"))[:200]
            raise EngineError(
                f"{NAME}: the vendor failed mid-reply: {detail}", retryable=True, kind="unavailable"
            )
        usage = _usage(event) or usage
        for candidate in event.get("candidates") or []:
            if candidate.get("index", 0) != 0:
                continue
            for part in (candidate.get("content") or {}).get("parts") or []:
                if part.get("text"):
                    yield TextDelta(str(part["text"]))
                elif isinstance(part.get("functionCall"), dict):
                    call = part["functionCall"]
                    args = call.get("args") or {}
                    if not isinstance(args, dict) or not call.get("name"):
                        raise EngineError(
                            f"{NAME}: a function call is malformed", retryable=True, kind="protocol"
                        )
                    call_id = str(call.get("id") or f"call_{uuid.uuid4().hex[:16]}")
                    yield ToolCall(call_id, str(call["name"]), args)
            if candidate.get("finishReason"):
                finished = True
    if not finished:
        raise EngineError(
            f"{NAME}: the stream ended before a finish reason", retryable=True, kind="closed"
        )
    if usage is not None:
        yield usage


def create(options: Options, context: EngineContext) -> GeminiLLM:
    """Factory: options ``model``, ``base_url``, ``temperature``, ``max_tokens``, ``timeout_s``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    model = read.text("model", "gemini-2.0-flash")
    if not model.startswith("gemini-") or "/" in model:
        raise EngineError(
            f"{NAME}: option 'model' is {model!r}; Gemini models start with 'gemini-'",
            kind="config",
        )
    engine = GeminiLLM(
        api_key=context.api_key,
        base_url=base_url,
        model=model,
        temperature=read.number("temperature", 0.5, low=0.0, high=2.0),
        max_tokens=read.integer("max_tokens", 256, low=1, high=8192),
        timeout_s=read.number("timeout_s", 30.0, low=0.1, high=600.0),
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def register() -> None:
    """Add ``gemini`` to the LLM registry."""
    LLM.register(NAME, create)
