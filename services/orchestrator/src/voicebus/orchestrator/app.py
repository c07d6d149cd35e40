"""Wiring only: settings → service → orchestrator (claims, conversations) → RPC, post-call →
ASGI app."""

from __future__ import annotations

import os
from collections.abc import Mapping

from starlette.applications import Starlette

from voicebus.orchestrator.calls import Orchestrator
from voicebus.orchestrator.kb_rpc import register_knowledge
from voicebus.orchestrator.migrations import MIGRATIONS
from voicebus.orchestrator.post_call import register as register_post_call
from voicebus.orchestrator.rpc import register
from voicebus.orchestrator.settings import OrchestratorSettings
from voicebus.runtime.service import Service


def build(
    settings: OrchestratorSettings | None = None, *, environ: Mapping[str, str] | None = None
) -> tuple[Service, Starlette]:
    """The orchestrator service and its ASGI app (``app.state.orchestrator`` is the domain).

    Args:
        settings: the settings; from the environment when None.
        environ: expands ``${VAR}`` in agent files; the process environment when None
            (agent files name arbitrary variables, which no settings class can list).
    """
    settings = settings or OrchestratorSettings()
    service = Service(settings, hot_path=False, db_schema="orchestrator", migrations=MIGRATIONS)
    orchestrator = Orchestrator(service, settings, os.environ if environ is None else environ)
    register(service.broker, orchestrator)
    register_knowledge(service.broker, orchestrator.knowledge)
    register_post_call(service.broker, orchestrator.post_call)
    app = service.asgi()
    app.state.orchestrator = orchestrator
    return service, app


def main() -> None:
    """Run the orchestrator service until SIGTERM."""
    service, app = build()
    service.run(app)
