"""Webhook tools against a real local HTTP server: our signature checks out on the business
side, arguments fill the URL and body, and every failure (timeout, 5xx, not JSON, oversize,
a refused target) is a short error naming why, with retries only for idempotent methods."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from voicebus.contracts.agents import WebhookSettings
from voicebus.devkit.ports import free_port
from voicebus.engines.base import ToolCall
from voicebus.orchestrator.ssrf import TargetPolicy
from voicebus.orchestrator.tools import Toolbox
from voicebus.orchestrator.webhook import SIGNATURE_HEADER, WebhookCall

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SECRET = "whsec-test-0123456789"


def verify(secret: str, header: str, body: bytes, tolerance_s: int = 300) -> bool:
    """What the business runs (the README's snippet): recompute and compare in constant time."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


class Business:
    """The business's server: records requests; some routes misbehave on purpose."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.port = free_port()

    async def account(self, request: Request) -> Response:
        body = await request.body()
        ok = verify(SECRET, request.headers.get(SIGNATURE_HEADER, ""), body)
        seen = {"path": request.url.path, "query": str(request.url.query), "body": body}
        self.requests.append({**seen, "signed": ok, "headers": dict(request.headers)})
        if not ok:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        return JSONResponse({"name": "Ada", "pin": request.path_params["pin"]})

    async def flaky(self, request: Request) -> Response:
        self.requests.append({"path": request.url.path})
        return JSONResponse({"error": "down"}, status_code=503)

    async def slow(self, request: Request) -> Response:
        await asyncio.sleep(2)
        return JSONResponse({})

    async def text(self, request: Request) -> Response:
        return PlainTextResponse("<html>hi</html>")

    async def huge(self, request: Request) -> Response:
        return JSONResponse({"blob": "x" * 5000})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/accounts/{pin}", self.account, methods=["GET", "POST"]),
            Route("/flaky", self.flaky, methods=["GET", "POST"]),
            Route("/slow", self.slow), Route("/text", self.text), Route("/huge", self.huge),
        ])  # fmt: skip


@pytest.fixture
async def business() -> AsyncIterator[Business]:
    server = Business()
    config = uvicorn.Config(server.app(), host="127.0.0.1", port=server.port, log_config=None,
                            lifespan="off")  # fmt: skip
    runner = uvicorn.Server(config)
    task = asyncio.create_task(runner.serve())
    while not runner.started:
        await asyncio.sleep(0.01)
    yield server
    runner.should_exit = True
    await task


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        yield http


def tool(business: Business, client: httpx.AsyncClient, path: str, **settings: Any) -> Toolbox:
    config = WebhookSettings.model_validate({
        "name": "lookup", "description": "d", "url": f"http://127.0.0.1:{business.port}{path}",
        "parameters": {"type": "object", "properties": {"pin": {"type": "string"}},
                       "required": ["pin"]}, **settings})  # fmt: skip
    call = WebhookCall(config, {"Authorization": "Bearer k"}, SECRET, client,
                       TargetPolicy(allow_loopback=True), "acme", "c1")  # fmt: skip
    return Toolbox([call])


async def test_a_signed_request_the_business_can_verify(
    business: Business, client: httpx.AsyncClient
) -> None:
    box = tool(business, client, "/accounts/{{pin}}", method="POST")
    outcome = await box.run(ToolCall("1", "lookup", {"pin": "12 34", "note": "hi"}))
    assert outcome.ok, outcome.error
    assert outcome.result == {"name": "Ada", "pin": "12 34"}
    (seen,) = business.requests
    assert seen["signed"]
    assert seen["path"] == "/accounts/12 34"  # url-encoded in the URL, decoded by the server
    assert json.loads(seen["body"]) == {"pin": "12 34", "note": "hi"}
    assert seen["headers"]["authorization"] == "Bearer k"
    assert seen["headers"]["x-voicebus-call-id"] == "c1"
    get = tool(business, client, "/accounts/{{pin}}", method="GET")
    assert (await get.run(ToolCall("2", "lookup", {"pin": "7", "extra": "a b"}))).ok
    assert business.requests[1]["query"] == "extra=a%20b"
    assert business.requests[1]["body"] == b""


@pytest.mark.parametrize(
    ("path", "settings", "why"),
    [
        ("/flaky", {"method": "POST"}, "http 503"),
        ("/slow", {"method": "GET", "timeout_s": 0.3}, "timeout"),
        ("/text", {"method": "GET"}, "not JSON"),
        ("/huge", {"method": "GET", "max_response_bytes": 1000}, "oversize"),
    ],
)
async def test_failures_name_why_and_the_call_goes_on(
    business: Business, client: httpx.AsyncClient, path: str, settings: dict[str, Any], why: str
) -> None:
    box = tool(business, client, path, **settings)
    outcome = await box.run(ToolCall("1", "lookup", {"pin": "1"}))
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.startswith(why), outcome.error
    assert json.loads(outcome.message_content()) == {"error": outcome.error}


async def test_only_idempotent_methods_are_retried(
    business: Business, client: httpx.AsyncClient
) -> None:
    await tool(business, client, "/flaky", method="POST").run(ToolCall("1", "lookup", {"pin": "1"}))
    assert len(business.requests) == 1
    await tool(business, client, "/flaky", method="GET", retries=2).run(
        ToolCall("2", "lookup", {"pin": "1"})
    )
    assert len(business.requests) == 1 + 3


async def test_loopback_private_and_link_local_targets_are_refused_unless_allowed(
    client: httpx.AsyncClient,
) -> None:
    for url in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://10.0.0.5/x",
                "http://[::1]/x", "http://localhost/x"):  # fmt: skip
        config = WebhookSettings(name="t", description="d", url=url)
        box = Toolbox([WebhookCall(config, {}, SECRET, client, TargetPolicy(), "acme", "c1")])
        outcome = await box.run(ToolCall("1", "t", {}))
        assert not outcome.ok
        assert outcome.error is not None
        assert outcome.error.startswith("refused target"), (url, outcome.error)
