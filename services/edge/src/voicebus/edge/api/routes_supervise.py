"""``WS /calls/{call_id}/supervise``: listen to a live call, whisper, take it over, hand back.

Only the console's session opens it (a browser cannot set headers on a WebSocket): the
session cookie, an ``Origin`` of this host when the browser sends one, and the session's
CSRF token in the first message (``{"type": "hello", "csrf": ...}``). The key needs
``calls:write`` and the call must be the key's tenant's and not ended (another tenant's
call is "not found", close code 4404).

To the page: ``{"type": "ready"}``, ``{"type": "format", "sample_rate": N}`` once the
call's audio is heard, binary audio messages (one lane byte, 0 caller / 1 agent, then
PCM16LE at the call's rate), ``{"type": "done", "event": "<type>"}`` per stored event,
``{"type": "error", "message": ...}`` for a refused message. From the page: the
commands of :meth:`Supervisor.command`, and binary microphone frames (PCM16LE at the
call's rate) while the operator holds the call, published on ``vb.audio.<call>.out``.
Closing the socket hands a held call back and ends the supervision.
"""

# No ``from __future__ import annotations``: FastAPI must see the route's parameters.

import asyncio
import contextlib
import json
import logging
import time
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from nats.aio.msg import Msg

from voicebus.contracts import subjects
from voicebus.contracts.audio import HEADER_RATE, HEADER_UTTERANCE
from voicebus.contracts.errors import InvalidTokenError
from voicebus.contracts.rpc import CALLS_GET, CallReply, GetCall
from voicebus.edge.api.console_session import SESSION_COOKIE, csrf_ok
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ApiError
from voicebus.edge.api.live_audio import LiveAudio, Unsubscribe
from voicebus.edge.api.supervision import LANE_AGENT, LANE_CALLER, SupervisionError, Supervisor
from voicebus.edge.tenancy import keys
from voicebus.edge.tenancy.keys import Scope

log = logging.getLogger(__name__)

_QUEUE_MAX: Final = 200
"""Audio messages waiting for a slow page (2 s of both lanes); older ones are dropped."""
_HELLO_TIMEOUT_S: Final = 10.0
_CLOSE_CODES: Final = {401: 4401, 403: 4403, 404: 4404, 409: 4409}


class _RefusedError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.code = _CLOSE_CODES.get(status, 1011)
        self.message = message


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser: the session's CSRF token still has to match
    return urlsplit(origin).netloc == ws.headers.get("host")


async def _operator(edge: Edge, ws: WebSocket, call_id: str) -> tuple[str, str]:
    """(tenant id, key id) of the page's session, after the hello and the call's checks."""
    if not _same_origin(ws):
        raise _RefusedError(403, "the page's origin is not this host")
    session = edge.auth.sessions.verify(ws.cookies.get(SESSION_COOKIE, ""), time.time())
    if session is None:
        raise _RefusedError(401, "the console session expired or is invalid; log in again")
    async with asyncio.timeout(_HELLO_TIMEOUT_S):
        hello = await ws.receive_text()
    try:
        token = json.loads(hello).get("csrf")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not csrf_ok(session, "POST", token):
        raise _RefusedError(403, "send the session's CSRF token in the hello message")
    try:
        principal = await edge.auth.authenticate_session(session)
    except ApiError as err:
        raise _RefusedError(err.status, err.message) from None
    if principal.tenant_id is None or principal.key_id is None:
        raise _RefusedError(403, "use one of the tenant's API keys")
    if not keys.allows(principal.scopes, Scope.CALLS_WRITE):
        raise _RefusedError(403, "the API key lacks the scope 'calls:write'")
    request = GetCall(tenant_id=principal.tenant_id, call_id=call_id)
    try:
        reply = await edge.owners.ask(CALLS_GET, request, CallReply)
    except ApiError as err:
        raise _RefusedError(err.status, err.message) from None
    if reply.call is None:
        raise _RefusedError(404, f"no call {call_id!r}")
    if reply.call.status == "ended":
        raise _RefusedError(409, f"call {call_id!r} has ended")
    return principal.tenant_id, principal.key_id


def supervise_router(edge: Edge) -> APIRouter:
    """``/calls/{call_id}/supervise`` (WebSocket)."""
    router = APIRouter(prefix="/calls", tags=["calls"])

    @router.websocket("/{call_id}/supervise")
    async def supervise(ws: WebSocket, call_id: str) -> None:
        await ws.accept()
        live = edge.live_audio
        try:
            subjects.token(call_id, "call id")
            if live is None:
                raise _RefusedError(503, "live supervision is not available on this edge")
            tenant_id, key_id = await _operator(edge, ws, call_id)
        except (_RefusedError, TimeoutError, WebSocketDisconnect, InvalidTokenError) as err:
            code = err.code if isinstance(err, _RefusedError) else 4400
            reason = err.message if isinstance(err, _RefusedError) else "expected the hello message"
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.close(code=code, reason=reason[:120])
            return
        supervisor = Supervisor(tenant_id, call_id, key_id, edge.source)
        await _Session(ws, live, supervisor).run()

    return router


class _Session:
    """One open supervision: the call's audio to the page, the page's commands to the bus."""

    def __init__(self, ws: WebSocket, live: LiveAudio, supervisor: Supervisor) -> None:
        self._ws = ws
        self._live = live
        self._s = supervisor
        self._out: asyncio.Queue[bytes | str] = asyncio.Queue(_QUEUE_MAX)

    async def run(self) -> None:
        s = self._s
        subscriptions: list[Unsubscribe] = []
        sender = asyncio.create_task(self._send())
        try:
            for lane, subject in ((LANE_CALLER, subjects.audio_in(s.call_id)),
                                  (LANE_AGENT, subjects.audio_out(s.call_id))):  # fmt: skip
                subscriptions.append(await self._live.listen(subject, self._relay(lane)))
            await self._live.record(s.started())
            log.info("supervision started", extra={"call_id": s.call_id, "key_id": s.operator})
            self._queue(json.dumps({"type": "ready"}))
            await self._receive()
        except WebSocketDisconnect:
            pass
        finally:
            for subscription in subscriptions:
                await subscription.unsubscribe()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            back = s.hand_back()
            for event in (back, s.ended()) if back is not None else (s.ended(),):
                await self._live.record(event)
            log.info("supervision ended", extra={"call_id": s.call_id, "key_id": s.operator})

    def _relay(self, lane: int):  # type: ignore[no-untyped-def]  # a nats-py callback
        prefix = bytes([lane])

        async def on_frame(msg: Msg) -> None:
            headers = msg.headers or {}
            rate = headers.get(HEADER_RATE, "")
            if lane == LANE_CALLER and rate.isdigit() and self._s.heard(int(rate)):
                self._queue(json.dumps({"type": "format", "sample_rate": int(rate)}))
            own = self._s.utterance_id
            if lane == LANE_AGENT and own is not None and headers.get(HEADER_UTTERANCE) == own:
                return  # the operator's own voice: not played back to them
            if self._s.sample_rate is not None and rate == str(self._s.sample_rate):
                self._queue(prefix + msg.data)

        return on_frame

    def _queue(self, message: bytes | str) -> None:
        if self._out.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._out.get_nowait()  # a slow page loses the oldest audio, not the newest
        self._out.put_nowait(message)

    async def _send(self) -> None:
        while True:
            message = await self._out.get()
            if isinstance(message, bytes):
                await self._ws.send_bytes(message)
            else:
                await self._ws.send_text(message)

    async def _receive(self) -> None:
        s = self._s
        speak_to = subjects.audio_out(s.call_id)
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("bytes") is not None:
                    frame = s.microphone(message["bytes"])
                    await self._live.speak(speak_to, frame.pcm, frame.headers)
                    continue
                event = s.command(message.get("text") or "")
            except SupervisionError as err:
                self._queue(json.dumps({"type": "error", "message": str(err)}))
                continue
            await self._live.record(event)
            self._queue(json.dumps({"type": "done", "event": event.type}))
