"""Wiring only: settings → service → subscribers → ASGI app.

Campaigns, contacts, DNC lists and dialing arrive with the campaigns work.
"""

from __future__ import annotations

from starlette.applications import Starlette

from voicebus.campaigns.handlers import register
from voicebus.campaigns.settings import CampaignsSettings
from voicebus.runtime.service import Service


def build(settings: CampaignsSettings | None = None) -> tuple[Service, Starlette]:
    """The campaigns service and its ASGI app."""
    service = Service(settings or CampaignsSettings(), db_schema="campaigns")
    register(service.broker)
    return service, service.asgi()


def main() -> None:
    """Run the campaigns service until SIGTERM."""
    service, app = build()
    service.run(app)
