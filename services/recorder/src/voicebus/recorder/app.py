"""Wiring only: settings → service → recorder → call claims → ASGI app."""

from __future__ import annotations

from starlette.applications import Starlette

from voicebus.recorder.archive import S3Store
from voicebus.recorder.handlers import Recorder
from voicebus.recorder.library import register_library
from voicebus.recorder.settings import RecorderSettings
from voicebus.runtime.claims import CallClaims
from voicebus.runtime.service import Service


def build(settings: RecorderSettings | None = None) -> tuple[Service, Starlette]:
    """The recorder service and its ASGI app."""
    settings = settings or RecorderSettings()
    service = Service(settings, hot_path=True)
    store = S3Store(settings) if settings.s3_bucket else None
    recorder = Recorder(service, settings, store)
    # Takeover: a recording whose recorder died is continued by another instance.
    claims = CallClaims(service, recorder.start_call, recorder.end_call, take_over=True,
                        on_unowned_end=recorder.adopt)  # fmt: skip
    recorder.use_leases(lambda: claims.leases)
    register_library(service.broker, settings, recorder, store)
    # Shutdown hooks run in reverse order: live recordings are finalized (and
    # announced) before the claims let go of their leases.
    service.on_shutdown(recorder.stop)
    return service, service.asgi()


def main() -> None:
    """Run the recorder service until SIGTERM."""
    service, app = build()
    service.run(app)
