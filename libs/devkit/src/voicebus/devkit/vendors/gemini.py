"""Google's Gemini API: ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``.

The key in ``x-goog-api-key`` (a wrong one: 400 ``INVALID_ARGUMENT`` with reason
``API_KEY_INVALID``, as Google answers); ``contents`` must alternate ``user`` and
``model`` starting with ``user`` (400 otherwise). Each SSE ``data:`` line is a
``GenerateContentResponse`` with the next text part; the last carries
``finishReason``.
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

VENDOR: Final = "gemini"


def _error(status: int, state: str, message: str, reason: str | None = None) -> Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": state}
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        ]
    return JSONResponse({"error": error}, status_code=status)


def _problem(contents: list[dict[str, Any]]) -> str | None:
    if not contents or contents[0].get("role") != "user":
        return "Please ensure that multiturn requests alternate between user and model."
    for before, after in itertools.pairwise(contents):
        if before.get("role") == after.get("role"):
            return "Please ensure that multiturn requests alternate between user and model."
    return None


def _chunk(text: str, finish: str | None = None, usage: tuple[int, int] | None = None) -> str:
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "index": 0,
    }
    if finish:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-standin"}
    if usage is not None:
        prompt, reply = usage
        body["usageMetadata"] = {"promptTokenCount": prompt, "candidatesTokenCount": reply,
                                 "totalTokenCount": prompt + reply}  # fmt: skip
    return "data: " + json.dumps(body) + "\r\n\r\n"


def prompt_words(body: dict[str, Any]) -> int:
    """The stand-in's token count of a request: the words of its system instruction and
    contents (what matters is that it grows with the prompt)."""
    parts = [*(body.get("systemInstruction") or {}).get("parts", [])]
    for content in body.get("contents") or []:
        parts += content.get("parts") or []
    return sum(len(str(p.get("text", "")).split()) for p in parts if isinstance(p, dict))


async def generate(vendor: VendorStandIn, request: Request) -> Response:
    """One streamed generation."""
    record = vendor.begin(request, VENDOR, request.headers.get("x-goog-api-key"))
    if not record.key_ok or record.scenario is Scenario.UNAUTHORIZED:
        return _error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            "API_KEY_INVALID",
        )
    if request.query_params.get("alt") != "sse":
        return _error(400, "INVALID_ARGUMENT", "stand-in: only alt=sse is served")
    body = await request.json()
    record.body.append(body)
    problem = _problem(body.get("contents") or [])
    if problem:
        return _error(400, "INVALID_ARGUMENT", problem)
    last = body["contents"][-1]
    heard = " ".join(p.get("text", "") for p in last.get("parts", []) if "text" in p)
    reply = vendor.reply(heard)
    stream = _stream(reply, record.scenario, prompt_words(body))
    return StreamingResponse(stream, media_type="text/event-stream")


async def _stream(reply: str, scenario: Scenario, prompt: int) -> AsyncIterator[str]:
    if scenario is Scenario.HANG:
        await asyncio.sleep(3600)
    if scenario is Scenario.SLOW:
        await asyncio.sleep(SLOW_START_S)
    words = reply.split(" ")
    for index, word in enumerate(words):
        if index == 2 and scenario is Scenario.ERROR_MID:
            yield (
                "data: "
                + json.dumps(
                    {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
                )
                + "\r\n\r\n"
            )
            return
        if index == 2 and scenario is Scenario.MALFORMED:
            yield 'data: {"candidates": [\r\n\r\n'
            return
        if index == 2 and scenario is Scenario.CLOSE_MID:
            return
        last = index == len(words) - 1
        yield _chunk(
            word if index == 0 else " " + word,
            "STOP" if last else None,
            (prompt, len(words)) if last else None,
        )
        await asyncio.sleep(0.005)
