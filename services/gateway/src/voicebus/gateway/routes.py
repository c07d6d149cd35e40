"""HTTP and WebSocket routes of every registered telephony provider.

Per provider: ``POST /telephony/<name>/inbound/{agent_id}`` (the inbound
webhook) and ``WS /ws/<name>`` (its media stream). Provider-facing, so they
stay out of the public OpenAPI document.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from voicebus.gateway.context import Gateway
from voicebus.gateway.inbound import InboundHandler
from voicebus.gateway.providers import providers
from voicebus.gateway.providers.base import Provider
from voicebus.gateway.session import MediaSession


def telephony_router(gateway: Gateway) -> APIRouter:
    """A router with the routes of every registered provider."""
    router = APIRouter(include_in_schema=False)
    for provider in providers():
        _add_provider(router, provider, gateway)
    return router


def _add_provider(router: APIRouter, provider: Provider, gateway: Gateway) -> None:
    handler = InboundHandler(provider, gateway)

    async def inbound(request: Request, agent_id: str) -> Response:
        return await handler(request, agent_id)

    async def stream(websocket: WebSocket) -> None:
        await MediaSession(gateway, provider, websocket).run()

    router.add_api_route(provider.inbound_path, inbound, methods=["POST"])
    router.add_api_websocket_route(provider.stream_path, stream)
