"""The live feed: ``GET /events/stream``, the tenant's events as Server-Sent Events."""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Final

import nats.errors
from fastapi import APIRouter, Depends
from starlette.responses import StreamingResponse
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError
from voicebus.edge.tenancy.keys import Scope

HEARTBEAT_S: Final = 15.0
_SSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": (
            "One SSE message per event: `event:` its type (`call.started.v1`), `id:` its id, "
            "`data:` the CloudEvents envelope as JSON. A comment line every 15 s keeps the "
            "connection open; `event: overflow` ends a stream whose reader fell behind."
        ),
    }
}


def sse_message(envelope: bytes) -> bytes:
    """One SSE message for an event envelope (JSON); an unparsable one becomes a comment."""
    try:
        event = json.loads(envelope)
        kind, event_id = str(event["type"]), str(event["id"])
    except (ValueError, KeyError, TypeError):
        return b": unreadable event skipped\n\n"
    data = json.dumps(event, separators=(",", ":"))  # one line: no newline inside data
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n".encode()


class _CountedStream(StreamingResponse):
    """A streaming response that reports when it is over, however it ended (the client left,
    the stream ended, the server is stopping)."""

    def __init__(self, on_close: Callable[[], Awaitable[None]], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._on_close()


def events_router(edge: Edge) -> APIRouter:
    """``/events``: the tenant's live feed."""
    router = APIRouter(prefix="/events", tags=["events"], responses=ERROR_RESPONSES)
    reader = edge.auth.tenant(Scope.CALLS_READ)
    open_streams: Counter[str] = Counter()

    def _closed(key_id: str) -> None:
        open_streams[key_id] -= 1
        if open_streams[key_id] <= 0:
            del open_streams[key_id]

    @router.get("/stream", response_class=StreamingResponse, responses=_SSE)
    async def stream(who: Annotated[TenantPrincipal, Depends(reader)]) -> StreamingResponse:
        """The tenant's events (``vb.evt.<tenant>.>``) as they happen, as Server-Sent Events.
        Only events published after the stream opened; read what happened before from
        ``/calls`` and ``/calls/{call_id}/events``. A key holds at most
        ``VB_EDGE_LIVE_STREAMS_PER_KEY`` streams open on one edge instance (429 beyond)."""
        if open_streams[who.key_id] >= edge.live_streams_per_key:
            raise ApiError(
                429,
                "too_many_streams",
                f"this API key already holds {edge.live_streams_per_key} live streams open",
                headers={"Retry-After": "5"},
            )
        open_streams[who.key_id] += 1
        try:
            events = await edge.feed.open(who.tenant_id)
        except nats.errors.Error:
            _closed(who.key_id)
            raise ApiError(
                503,
                "bus_unavailable",
                "the live feed is unavailable; retry later",
                headers={"Retry-After": "1"},
            ) from None
        except BaseException:
            _closed(who.key_id)
            raise

        async def closed() -> None:
            await events.close()
            _closed(who.key_id)

        async def body() -> AsyncIterator[bytes]:
            yield b": connected\n\n"
            iterator = events.__aiter__()
            next_event = asyncio.ensure_future(anext(iterator, None))
            try:
                while True:
                    done, _ = await asyncio.wait({next_event}, timeout=HEARTBEAT_S)
                    if not done:
                        yield b": heartbeat\n\n"
                        continue
                    envelope = next_event.result()
                    if envelope is None:
                        yield b"event: overflow\ndata: {}\n\n"
                        return
                    yield sse_message(envelope)
                    next_event = asyncio.ensure_future(anext(iterator, None))
            finally:
                next_event.cancel()
                await asyncio.wait({next_event})  # let it finish before closing the feed

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return _CountedStream(closed, body(), media_type="text/event-stream", headers=headers)

    return router
