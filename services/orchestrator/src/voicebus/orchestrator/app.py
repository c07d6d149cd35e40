"""Wiring only: settings → service → call claims → ASGI app.

The LLM, tools and flows for each claimed call arrive with the first-call work.
"""

from __future__ import annotations

from starlette.applications import Starlette

from voicebus.orchestrator.settings import OrchestratorSettings
from voicebus.runtime.claims import CallClaims
from voicebus.runtime.service import Service


def build(settings: OrchestratorSettings | None = None) -> tuple[Service, Starlette]:
    """The orchestrator service and its ASGI app."""
    service = Service(settings or OrchestratorSettings(), hot_path=False)
    CallClaims(service)
    return service, service.asgi()


def main() -> None:
    """Run the orchestrator service until SIGTERM."""
    service, app = build()
    service.run(app)
