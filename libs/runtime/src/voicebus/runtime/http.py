"""HTTP side of the service kit: health, readiness and metrics routes, lifespan, uvicorn."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from uvicorn.config import STARTUP_FAILURE

from voicebus.runtime.errors import VoicebusError
from voicebus.runtime.logs import configure_logging
from voicebus.runtime.metrics import CONTENT_TYPE, render

if TYPE_CHECKING:
    from voicebus.runtime.service import Service

__all__ = ["WS_PROTOCOL", "mount", "serve"]

log = logging.getLogger(__name__)

WS_PROTOCOL: Final = "websockets-sansio"
"""uvicorn's sans-I/O websockets implementation: about half the CPU per frame
of the default ``websockets`` one for media streams."""

AppT = TypeVar("AppT", bound=Starlette)


def _routes(service: Service) -> list[tuple[str, Any]]:
    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        results = await service.check_readiness()
        failing = sorted(name for name, ok in results.items() if not ok)
        if failing:
            return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(_request: Request) -> Response:
        return Response(render(service.registry), media_type=CONTENT_TYPE)

    return [("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics)]


@overload
def mount(service: Service, app: None) -> Starlette: ...


@overload
def mount(service: Service, app: AppT) -> AppT: ...


def mount(service: Service, app: AppT | None) -> AppT | Starlette:
    """Add the routes and wrap the app's lifespan in the service's (see ``Service.asgi``)."""
    target: Starlette = app if app is not None else Starlette()
    if getattr(target.state, "voicebus_service", None) is not None:
        raise VoicebusError("a service is already mounted on this app")
    target.state.voicebus_service = service
    for path, endpoint in _routes(service):
        target.add_route(path, endpoint, methods=["GET"], include_in_schema=False)

    inner = target.router.lifespan_context

    @asynccontextmanager
    async def lifespan(asgi_app: Any) -> AsyncIterator[Any]:
        async with service.lifespan(asgi_app), inner(asgi_app) as state:
            yield state

    target.router.lifespan_context = lifespan
    return target


def serve(service: Service, app: Starlette) -> None:
    """Run uvicorn on the service's host and port; returns after a graceful shutdown.

    Logging is configured here, not in the lifespan: the process entry point
    owns the root logger (a test or an embedding host keeps its own).
    """
    settings = service.settings
    configure_logging(settings)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        ws=WS_PROTOCOL,
        # Telephony media is base64 μ-law that barely compresses; per-message deflate
        # was among the largest CPU costs per outbound frame when profiled.
        ws_per_message_deflate=False,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        # Same exit status as ``uvicorn.run`` when the lifespan start-up failed.
        sys.exit(STARTUP_FAILURE)
