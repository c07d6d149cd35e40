"""The lean media WebSocket server: picows on the gateway's event loop, its own port.

Routes ``/ws/<provider>`` for every registered provider and ``/ws/browser``
when the browser page is enabled; any other path is a 404 at the upgrade. A
provider with a handshake check (Exotel's Basic auth) is checked on the upgrade
request's headers (403). Past ``ws_max_connections`` open sockets an upgrade
gets HTTP 503 with ``Retry-After``, never a socket it cannot serve.

Stopping first stops listening; with a drain bound (``VB_GATEWAY_DRAIN_TIMEOUT_S``)
live calls go on until they end or the bound passes. What is left is closed with
1012 (service restart): each call ends as ``gateway_lost`` and its ``call.ended`` is
stored before the bus connections close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qsl

from picows import (
    WSListener,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from voicebus.contracts.events import EndReason
from voicebus.gateway.metrics import WS_OPEN, RefusalReason, count_refused
from voicebus.gateway.providers.base import Provider
from voicebus.gateway.stream.connection import CLOSE_SERVICE_RESTART, MediaConnection
from voicebus.gateway.stream.media_call import StreamHub

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S: Final = 5.0
MAX_QUERY_CHARS: Final = 8192


class MediaServer:
    """The media WebSockets of one gateway process.

    Args:
        hub: what every connection shares (settings, bus, frame publisher, claims).
        providers: the providers served, each at its ``stream_path``.
    """

    def __init__(self, hub: StreamHub, providers: Sequence[Provider]) -> None:
        self._hub = hub
        self._settings = hub.gateway.settings
        self._routes = {p.stream_path: p for p in providers}
        self._open: set[MediaConnection] = set()
        self._server: asyncio.Server | None = None

    @property
    def paths(self) -> list[str]:
        """The paths served."""
        return sorted(self._routes)

    @property
    def port(self) -> int:
        """The port listened on (after :meth:`start`)."""
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def open_connections(self) -> int:
        """Sockets open now."""
        return len(self._open)

    async def start(self) -> None:
        """Listen on ``VB_GATEWAY_HTTP_HOST:VB_GATEWAY_WS_PORT``."""
        settings = self._settings
        self._server = await ws_create_server(
            self._listener,
            settings.http_host,
            settings.ws_port,
            websocket_handshake_timeout=HANDSHAKE_TIMEOUT_S,
            max_frame_size=4 * settings.ws_max_message_bytes,
            enable_auto_pong=True,
            reuse_port=settings.ws_reuse_port or None,
        )
        log.info("media websocket server listening", extra={"port": self.port, "paths": self.paths})

    async def stop(self, timeout_s: float = 10.0, drain_s: float = 0.0) -> None:
        """Stop listening, let live calls go on for up to ``drain_s``, then close every
        socket left (1012) and wait up to ``timeout_s`` for those calls to end."""
        if self._server is not None:
            self._server.close()  # no new socket; the open ones stay
        live = [c.done for c in self._open if c.done is not None]
        if live and drain_s > 0:
            log.info("draining media calls", extra={"calls": len(live), "drain_s": drain_s})
            _, left = await asyncio.wait(live, timeout=drain_s)
            log.info("media calls drained", extra={"calls_left": len(left)})
        pending = [c.done for c in self._open if c.done is not None]
        for connection in list(self._open):
            connection.end(EndReason.GATEWAY_LOST, CLOSE_SERVICE_RESTART)
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout_s)
            if late:
                log.warning("media calls still ending at shutdown", extra={"calls": len(late)})
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _listener(
        self, request: WSUpgradeRequest
    ) -> WSListener | WSUpgradeResponseWithListener | None:
        path, _, query = request.path.decode("latin-1").partition("?")
        provider = self._routes.get(path)
        if provider is None:
            return None  # 404
        if len(self._open) >= self._settings.ws_max_connections:
            count_refused(RefusalReason.CAPACITY)
            log.warning("media websocket refused: at capacity", extra={"open": len(self._open)})
            response = WSUpgradeResponse.create_error_response(
                503, b"media server at capacity\n", extra_headers={"Retry-After": "1"}
            )
            return WSUpgradeResponseWithListener(response, None)
        check = provider.stream_auth
        if check is not None and not check(self._settings, request.headers):
            count_refused(RefusalReason.UNAUTHORIZED)
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(403, b"forbidden\n"), None
            )
        params = dict(parse_qsl(query[:MAX_QUERY_CHARS], keep_blank_values=True))
        return MediaConnection(self._hub, provider, params, self._opened, self._done)

    def _opened(self, connection: MediaConnection) -> None:
        self._open.add(connection)
        WS_OPEN.set(len(self._open))

    def _done(self, connection: MediaConnection) -> None:
        self._open.discard(connection)
        WS_OPEN.set(len(self._open))
