"""HTTP and WebSocket routes of every registered telephony provider.

Per provider: ``GET|POST /telephony/<name>/inbound/{agent_id}`` (the inbound
webhook) and, for providers that dial,
``GET|POST /telephony/<name>/answer/{call_id}`` and ``.../status/{call_id}``
(outbound callbacks) and, for providers with transfer markup,
``.../transfer/{call_id}``. Provider-facing, so they stay out of the public OpenAPI
document. The media WebSockets (``/ws/<name>``) are served by the lean server
(``stream/``) on their own port, not here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from voicebus.gateway.context import Gateway
from voicebus.gateway.inbound import InboundHandler
from voicebus.gateway.metrics import observe_webhook
from voicebus.gateway.outbound_calls import Outbound
from voicebus.gateway.providers import providers
from voicebus.gateway.providers.base import Provider


def telephony_router(gateway: Gateway) -> APIRouter:
    """A router with the routes of every registered provider."""
    router = APIRouter(include_in_schema=False)
    outbound = Outbound(gateway)
    for provider in providers():
        _add_provider(router, provider, gateway)
        if provider.callbacks is not None:
            _add_callbacks(router, provider, outbound)
    return router


def _add_provider(router: APIRouter, provider: Provider, gateway: Gateway) -> None:
    handler = InboundHandler(provider, gateway)

    async def inbound(request: Request, agent_id: str) -> Response:
        return await _timed(provider, "inbound", handler(request, agent_id))

    router.add_api_route(provider.inbound_path, inbound, methods=["GET", "POST"])
    if provider.tenant_webhook is not None:

        async def tenant_inbound(request: Request, tenant_id: str, agent_id: str) -> Response:
            return await _timed(provider, "inbound", handler(request, agent_id, tenant_id))

        router.add_api_route(provider.tenant_inbound_path, tenant_inbound, methods=["GET", "POST"])


def _add_callbacks(router: APIRouter, provider: Provider, outbound: Outbound) -> None:
    async def answer(request: Request, call_id: str) -> Response:
        return await _timed(provider, "answer", outbound.answer(provider, request, call_id))

    async def status(request: Request, call_id: str) -> Response:
        return await _timed(provider, "status", outbound.status(provider, request, call_id))

    router.add_api_route(provider.answer_path, answer, methods=["GET", "POST"])
    router.add_api_route(provider.status_path, status, methods=["GET", "POST"])
    if provider.transfer_markup is not None:

        async def transfer(request: Request, call_id: str) -> Response:
            answer = outbound.transfer(provider, request, call_id)
            return await _timed(provider, "transfer", answer)

        router.add_api_route(provider.transfer_path, transfer, methods=["GET", "POST"])


async def _timed(provider: Provider, kind: str, answer: Awaitable[Response]) -> Response:
    """Await a webhook's answer and record its time and status class; 5xx if it raised."""
    started = time.perf_counter()
    status = 500
    try:
        response = await answer
        status = response.status_code
        return response
    finally:
        observe_webhook(provider.name, kind, status, time.perf_counter() - started)
