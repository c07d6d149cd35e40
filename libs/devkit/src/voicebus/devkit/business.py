"""A business's own server, on loopback: what webhook tools call in the demo and the tests.

It answers ``GET|POST /orders/{order_id}`` from a JSON file of orders and
``GET|POST /accounts/{pin}`` from a dict of accounts, and checks every
request's ``X-Voicebus-Signature`` exactly as a business would (the README's
snippet): a request that is not signed with the shared secret, or is older
than five minutes, is refused with 401. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voicebus.devkit.ports import LOOPBACK, free_port

SIGNATURE_HEADER: Final = "X-Voicebus-Signature"
TOLERANCE_S: Final = 300
DEV_SECRET: Final = "whsec-dev-0123456789abcdef"  # noqa: S105 - a development fixture


def verify_signature(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """Whether ``header`` (``t=<unix>,v1=<hex>``) signs ``body`` with ``secret``, recently."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
        return False
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), given)


@dataclass
class Seen:
    """One request the business received."""

    path: str
    method: str
    body: bytes
    signed: bool
    call_id: str | None


@dataclass
class BusinessServer:
    """The stand-in business (see the module docstring).

    Attributes:
        secret: the signing secret shared with the webhook tools.
        orders: order records by number.
        accounts: account records by PIN.
        seen: every request, in order.
    """

    secret: str = DEV_SECRET
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @classmethod
    def with_orders(cls, path: Path, **kwargs: Any) -> BusinessServer:
        """A business whose orders come from a JSON object file (``agents/data/orders.json``)."""
        return cls(orders=json.loads(path.read_text(encoding="utf-8")), **kwargs)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://{LOOPBACK}:{self.port}"

    async def _lookup(
        self, request: Request, table: dict[str, dict[str, Any]], key: str
    ) -> Response:
        body = await request.body()
        signed = verify_signature(self.secret, request.headers.get(SIGNATURE_HEADER, ""), body)
        self.seen.append(Seen(request.url.path, request.method, body, signed,
                              request.headers.get("X-Voicebus-Call-Id")))  # fmt: skip
        if not signed:
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        wanted = "".join(ch for ch in request.path_params[key] if ch.isdigit())
        record = table.get(wanted)
        if record is None:
            return JSONResponse({"found": False, key: wanted})
        return JSONResponse({"found": True, key: wanted, **record})

    async def _orders(self, request: Request) -> Response:
        return await self._lookup(request, self.orders, "order_id")

    async def _accounts(self, request: Request) -> Response:
        return await self._lookup(request, self.accounts, "pin")

    async def start(self) -> BusinessServer:
        """Serve on loopback."""
        app = Starlette(routes=[
            Route("/orders/{order_id}", self._orders, methods=["GET", "POST"]),
            Route("/accounts/{pin}", self._accounts, methods=["GET", "POST"]),
        ])  # fmt: skip
        config = uvicorn.Config(app, host=LOOPBACK, port=self.port, log_config=None,
                                lifespan="off")  # fmt: skip
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(30):
            while not self._server.started:
                if self._task.done():
                    raise RuntimeError(f"business stand-in did not start on port {self.port}")
                await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, timeout=30)
            self._server = self._task = None
