"""``X-Request-Id``: taken from the request when well-formed, else made; echoed back."""

from __future__ import annotations

import re
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voicebus.contracts.ids import new_id
from voicebus.runtime.rpc import REQUEST_ID

HEADER: Final = "x-request-id"
_VALID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

__all__ = ["HEADER", "REQUEST_ID", "RequestIdMiddleware"]


class RequestIdMiddleware:
    """Pure ASGI middleware (no per-request task): HTTP only, WebSockets pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _given(scope)
        request_id = given if given and _VALID.fullmatch(given) else new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        encoded = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", encoded))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


def _given(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            return bytes(value).decode("latin-1")
    return None
