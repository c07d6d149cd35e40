"""Browser calls on the gateway: the browser as a media session sees it.

The page itself is the edge's (``GET /browser``); the edge asks this gateway to start
each call (``vb.rpc.gateway.sessions.create``, see :mod:`.sessions`), so only this
gateway signs a browser call's stream parameters. ``WS /ws/browser`` runs on the
gateway's media WebSocket server (``stream/``), speaks the protocol in :mod:`.codec`,
and is served only while browser calls are on (``VB_GATEWAY_BROWSER_CALLS``).
"""

from __future__ import annotations

from typing import Final

from voicebus.gateway.browser.codec import BrowserCodec
from voicebus.gateway.browser.sessions import NAME, STREAM_PATH
from voicebus.gateway.providers.base import InboundWebhook, Provider
from voicebus.gateway.settings import GatewaySettings

__all__ = ["PROVIDER", "STREAM_PATH"]


def _no_webhook(settings: GatewaySettings) -> InboundWebhook:
    raise TypeError("browser calls start with vb.rpc.gateway.sessions.create, not a webhook")


PROVIDER: Final = Provider(name=NAME, webhook=_no_webhook, codec=BrowserCodec)
"""The browser as the media session sees it; not a telephony provider, so not registered."""
