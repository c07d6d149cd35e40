"""Fixtures of the campaigns service's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest

from voicebus.campaigns.app import build
from voicebus.campaigns.clock import FakeClock
from voicebus.campaigns.settings import CampaignsSettings
from voicebus.devkit.campaign.client import CampaignClient
from voicebus.devkit.campaign.contacts import MONDAY_14_UTC
from voicebus.devkit.campaign.simulator import SimulatedProvider
from voicebus.runtime.service import Service


@pytest.fixture
async def stack(
    embedded_nats_factory: Callable[..., Any], database_url: str
) -> AsyncIterator[tuple[Service, FakeClock, SimulatedProvider, CampaignClient]]:
    """The campaigns service on a private nats-server and a fresh database, on a fake clock,
    with a simulated provider in the gateway's place and a client of its bus API."""
    server = embedded_nats_factory()
    clock = FakeClock(MONDAY_14_UTC)
    settings = CampaignsSettings(
        nats_url=server.url, database_url=database_url, instance_id="c1", tick_s=0.05,
        progress_interval_s=0.5, reap_interval_s=0.5, log_level="WARNING",
    )  # fmt: skip
    service, _app = build(settings, clock)
    await service.start()
    nc = await nats.connect(server.url)
    sim = SimulatedProvider(nc, talk_s=0.05)
    await sim.start()
    try:
        yield service, clock, sim, CampaignClient(nc, "acme")
    finally:
        await sim.stop()
        await nc.close()
        await service.stop()
