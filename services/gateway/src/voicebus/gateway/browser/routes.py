"""Browser calls on the gateway: ``WS /ws/browser``, the same media session as a phone call.

The page itself is the edge's (``GET /browser``); the edge asks this gateway to start
each call (``vb.rpc.gateway.sessions.create``, see :mod:`.sessions`), so only this
gateway signs a browser call's stream parameters. The WebSocket speaks the protocol in
:mod:`.codec` and is served only while browser calls are on
(``VB_GATEWAY_BROWSER_CALLS``).
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from starlette.websockets import WebSocket

from voicebus.gateway.browser.codec import BrowserCodec
from voicebus.gateway.browser.sessions import NAME, STREAM_PATH
from voicebus.gateway.context import Gateway
from voicebus.gateway.providers.base import InboundWebhook, Provider
from voicebus.gateway.session import MediaSession
from voicebus.gateway.settings import GatewaySettings

__all__ = ["PROVIDER", "STREAM_PATH", "browser_router"]


def _no_webhook(settings: GatewaySettings) -> InboundWebhook:
    raise TypeError("browser calls start with vb.rpc.gateway.sessions.create, not a webhook")


PROVIDER: Final = Provider(name=NAME, webhook=_no_webhook, codec=BrowserCodec)
"""The browser as the media session sees it; not a telephony provider, so not registered."""


def browser_router(gateway: Gateway) -> APIRouter:
    """The browser calls' media WebSocket (none while browser calls are off)."""
    router = APIRouter(include_in_schema=False)
    if not gateway.settings.browser_calls_enabled:
        return router

    async def stream(websocket: WebSocket) -> None:
        await MediaSession(gateway, PROVIDER, websocket).run()

    router.add_api_websocket_route(STREAM_PATH, stream)
    return router
