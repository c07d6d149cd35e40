"""A cap on HTTP request bodies: 413 before a handler reads more than it should.

A declared ``Content-Length`` over the cap is refused at once; a body without one
(chunked) is read up to the cap and refused as soon as it goes over, so a client
cannot make a service buffer an unbounded body. Paths a route limits itself (a
large upload read in a stream) are left to that route.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]


class BodyLimit:
    """ASGI middleware: request bodies of at most ``max_bytes`` (413 otherwise).

    Args:
        app: the wrapped app.
        max_bytes: the cap.
        exempt: path predicates whose routes enforce their own limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        exempt: Collection[Callable[[str], bool]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = tuple(exempt)
        # A body a little over the cap is read to its end before the 413, so the client
        # reads the answer instead of a reset connection; a much larger one is not.
        self._drain_bytes = 4 * max(max_bytes, 64 * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 413."""
        if scope["type"] != "http" or any(test(scope["path"]) for test in self.exempt):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            if declared <= self._drain_bytes:
                await _drain(receive, self._drain_bytes)
            await self._refuse(send)
            return
        if declared is not None:
            await self.app(scope, _capped(receive, self.max_bytes), send)
            return
        # No length given: read it here, up to the cap, then hand it on whole.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await _drain(receive, self._drain_bytes)
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                following: Message = await receive()
                return following
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is larger than {self.max_bytes} bytes"
        body = json.dumps(
            {"error": {"status": 413, "code": "body_too_large", "message": message, "fields": []}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop the rest of a body, at most ``limit`` bytes."""
    size = 0
    while size <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _capped(receive: Receive, max_bytes: int) -> Receive:
    """``receive`` that stops a body longer than it declared (the server enforces the
    declared length; this is a second line)."""
    size = 0

    async def wrapped() -> Message:
        nonlocal size
        message: Message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > max_bytes:
                return {"type": "http.disconnect"}
        return message

    return wrapped
