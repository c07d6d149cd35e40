"""Anthropic's Messages API, streamed: ``POST /v1/messages`` with ``stream: true``.

The key in ``x-api-key`` (401 ``authentication_error`` otherwise) and an
``anthropic-version`` header; the answer is server-sent events ``message_start``,
``content_block_start``/``_delta``/``_stop``, ``message_delta``, ``message_stop``
(``ping`` between), or an ``error`` event. It refuses conversations that do not
alternate user/assistant starting with the user, as the real API does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from voicebus.devkit.vendors.scenarios import SLOW_START_S, Scenario

if TYPE_CHECKING:
    from voicebus.devkit.vendors.server import VendorStandIn

VENDOR: Final = "anthropic"


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _error(status: int, kind: str, message: str) -> Response:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}}, status_code=status
    )


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content or [] if b.get("type") == "text"]
        if texts:
            return " ".join(texts)
    return ""


def alternation_problem(messages: list[dict[str, Any]]) -> str | None:
    """Why the conversation breaks the API's role rules, or None."""
    if not messages or messages[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
    for before, after in itertools.pairwise(messages):
        if before.get("role") == after.get("role"):
            return 'messages: roles must alternate between "user" and "assistant"'
    return None


async def messages(vendor: VendorStandIn, request: Request) -> Response:
    """One streamed message."""
    record = vendor.begin(request, VENDOR, request.headers.get("x-api-key"))
    if not record.key_ok or record.scenario is Scenario.UNAUTHORIZED:
        return _error(401, "authentication_error", "invalid x-api-key")
    body = await request.json()
    record.body.append(body)
    problem = alternation_problem(body.get("messages") or [])
    if problem is not None:
        return _error(400, "invalid_request_error", problem)
    reply = vendor.reply(_last_user_text(body["messages"]))
    return StreamingResponse(_stream(reply, record.scenario, body), media_type="text/event-stream")


def prompt_words(body: dict[str, Any]) -> int:
    """The stand-in's token count of a request: the words of its system prompt and messages
    (a real tokenizer counts differently; what matters is that it grows with the prompt)."""
    text = [str(body.get("system") or "")]
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            text.append(content)
        elif isinstance(content, list):
            text += [str(b.get("text", "")) for b in content if isinstance(b, dict)]
    return sum(len(t.split()) for t in text)


async def _stream(reply: str, scenario: Scenario, body: dict[str, Any]) -> AsyncIterator[str]:
    if scenario is Scenario.HANG:
        await asyncio.sleep(3600)
    if scenario is Scenario.SLOW:
        await asyncio.sleep(SLOW_START_S)
    yield _event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_standin",
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": prompt_words(body), "output_tokens": 1},
            },
        },
    )
    yield _event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    yield _event("ping", {"type": "ping"})
    words = reply.split(" ")
    for index, word in enumerate(words):
        if index == 2 and scenario is Scenario.ERROR_MID:
            yield _event(
                "error",
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            )
            return
        if index == 2 and scenario is Scenario.MALFORMED:
            yield 'event: content_block_delta\ndata: {"type": "content_bl\n\n'
            return
        if index == 2 and scenario is Scenario.CLOSE_MID:
            return
        piece = word if index == 0 else " " + word
        yield _event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
        )
        await asyncio.sleep(0.005)
    yield _event("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": len(words)},
        },
    )
    yield _event("message_stop", {"type": "message_stop"})
