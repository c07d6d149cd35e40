"""The live feed: ``GET /events/stream``, the tenant's events as Server-Sent Events."""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends
from starlette.responses import StreamingResponse

from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES
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


def events_router(edge: Edge) -> APIRouter:
    """``/events``: the tenant's live feed."""
    router = APIRouter(prefix="/events", tags=["events"], responses=ERROR_RESPONSES)
    reader = edge.auth.tenant(Scope.CALLS_READ)

    @router.get("/stream", response_class=StreamingResponse, responses=_SSE)
    async def stream(who: Annotated[TenantPrincipal, Depends(reader)]) -> StreamingResponse:
        """The tenant's events (``vb.evt.<tenant>.>``) as they happen, as Server-Sent Events.
        Only events published after the stream opened; read what happened before from
        ``/calls`` and ``/calls/{call_id}/events``."""

        async def body() -> AsyncIterator[bytes]:
            yield b": connected\n\n"
            events = edge.feed.stream(who.tenant_id).__aiter__()
            next_event = asyncio.ensure_future(anext(events, None))
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
                    next_event = asyncio.ensure_future(anext(events, None))
            finally:
                next_event.cancel()
                await asyncio.wait({next_event})  # let it finish before closing the feed
                await events.aclose()  # type: ignore[attr-defined]

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    return router
