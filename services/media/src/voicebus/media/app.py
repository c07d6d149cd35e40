"""Wiring only: settings → service → models and engines → call claims → ASGI app."""

from __future__ import annotations

import logging
import os

from loguru import logger as loguru_logger
from starlette.applications import Starlette

from voicebus.engines.builtin import load_builtin_engines
from voicebus.engines.keys import EnvKeyResolver
from voicebus.media.agents import default_profile
from voicebus.media.calls import MediaCalls
from voicebus.media.engine_set import EngineAccess, warm
from voicebus.media.models import SharedModels
from voicebus.media.settings import MediaSettings
from voicebus.runtime.claims import CallClaims
from voicebus.runtime.logs import pii
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)


def build(settings: MediaSettings | None = None) -> tuple[Service, Starlette]:
    """The media service and its ASGI app."""
    settings = settings or MediaSettings()
    route_pipecat_logs()
    load_builtin_engines()
    service = Service(settings, hot_path=True)
    models = SharedModels(vad_batch_wait_ms=settings.vad_batch_wait_ms)
    # Vendor keys come from the environment for now; the edge will serve per-tenant keys
    # behind the same KeyResolver protocol.
    access = EngineAccess(
        keys=EnvKeyResolver(os.environ), allow_private_urls=settings.allow_private_engine_urls
    )
    calls = MediaCalls(service, settings, models, access)
    CallClaims(service, calls.on_start, calls.on_end, calls.on_lost, take_over=True)

    @service.on_connected
    async def load_models(_svc: Service) -> None:
        await models.load(smart_turn=settings.smart_turn)
        if settings.warm_engines:
            profile = default_profile("default", settings.default_stt, settings.default_tts)
            for problem in (await warm(profile)).problems:
                log.warning("default engine unavailable", extra={"detail": problem})

    # Registered after CallClaims': shutdown hooks run in reverse, so calls end first.
    @service.on_shutdown
    async def end_calls(_svc: Service) -> None:
        await calls.close_all()
        models.close()

    # Registered last, so it runs first: live calls go on while the bus is still up.
    @service.on_shutdown
    async def drain_calls(_svc: Service) -> None:
        await calls.drain(settings.drain_timeout_s)

    return service, service.asgi()


def route_pipecat_logs(level: str = "WARNING") -> None:
    """Send pipecat's loguru records at ``level`` and above to the ``pipecat`` logger.

    pipecat logs free text (it may quote what was said), so the text travels in a
    ``pii`` field under a fixed message.
    """
    target = logging.getLogger("pipecat")

    def forward(message: object) -> None:
        record = getattr(message, "record", {})
        target.log(
            logging.getLevelName(record["level"].name) if "level" in record else logging.WARNING,
            "pipecat reported",
            extra={"source": record.get("name"), **pii(detail=record.get("message"))},
        )

    loguru_logger.remove()
    loguru_logger.add(forward, level=level)


def main() -> None:
    """Run the media service until SIGTERM."""
    service, app = build()
    service.run(app)
