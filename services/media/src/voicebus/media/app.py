"""Wiring only: settings → service → call claims → ASGI app.

VAD, turn-taking, STT and TTS for each claimed call arrive with the first-call work.
"""

from __future__ import annotations

from starlette.applications import Starlette

from voicebus.media.settings import MediaSettings
from voicebus.runtime.claims import CallClaims
from voicebus.runtime.service import Service


def build(settings: MediaSettings | None = None) -> tuple[Service, Starlette]:
    """The media service and its ASGI app."""
    service = Service(settings or MediaSettings(), hot_path=True)
    CallClaims(service)
    return service, service.asgi()


def main() -> None:
    """Run the media service until SIGTERM."""
    service, app = build()
    service.run(app)
