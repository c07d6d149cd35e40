"""Wiring only: settings → service → call claims → ASGI app.

Stereo recording of each claimed call arrives with the first-call work.
"""

from __future__ import annotations

from starlette.applications import Starlette

from voicebus.recorder.settings import RecorderSettings
from voicebus.runtime.claims import CallClaims
from voicebus.runtime.service import Service


def build(settings: RecorderSettings | None = None) -> tuple[Service, Starlette]:
    """The recorder service and its ASGI app."""
    service = Service(settings or RecorderSettings(), hot_path=True)
    CallClaims(service)
    return service, service.asgi()


def main() -> None:
    """Run the recorder service until SIGTERM."""
    service, app = build()
    service.run(app)
