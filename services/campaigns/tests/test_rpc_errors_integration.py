"""The campaigns service's request/reply answers to bad requests (the ``voicebus campaign``
command, which goes through the edge, is tested in ``tests/edge/test_edge_cli.py``)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from datetime import time
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from voicebus.campaigns.app import build
from voicebus.campaigns.clock import FakeClock
from voicebus.campaigns.settings import CampaignsSettings
from voicebus.contracts import campaigns as api
from voicebus.devkit.campaign.client import CampaignClient, CampaignError
from voicebus.devkit.campaign.contacts import MONDAY_14_UTC

pytestmark = pytest.mark.integration


@pytest.fixture
async def service_url(
    embedded_nats_factory: Callable[..., Any], database_url: str
) -> AsyncIterator[str]:
    server = embedded_nats_factory()
    settings = CampaignsSettings(
        nats_url=server.url, database_url=database_url, instance_id="c1", tick_s=0.05,
        log_level="WARNING",
    )  # fmt: skip
    service, _app = build(settings, FakeClock(MONDAY_14_UTC))
    await service.start()
    try:
        yield server.url
    finally:
        await service.stop()


async def test_bad_requests_are_answered_with_their_reason(service_url: str) -> None:
    nc: Client = await nats.connect(service_url)
    try:
        client = CampaignClient(nc, "acme")
        with pytest.raises(CampaignError, match="404 campaign_not_found"):
            await client.get("nope")
        reply = await nc.request(api.CAMPAIGNS_CREATE, b'{"tenant_id": "acme"}', timeout=5)
        answer = api.CampaignReply.model_validate_json(reply.data)
        assert answer.error is not None
        assert (answer.error.status, answer.error.code) == (422, "invalid_request")
        assert "spec" in answer.error.message
        spec = api.CampaignSpec(
            name="x", agent_id="demo", caller_ids=["+442079460999"],
            windows={api.Weekday.MON: [api.TimeRange(start=time(9), end=time(17))]},
        )  # fmt: skip
        campaign = await client.create(spec)
        with pytest.raises(CampaignError, match="no phone column"):
            await client.upload(campaign.campaign_id, io.BytesIO(b"name\nAda\n"))
        paused = await client.move("start", campaign.campaign_id)
        assert paused.status is api.CampaignStatus.SCHEDULED
        assert (
            await client.move("pause", campaign.campaign_id)
        ).status is api.CampaignStatus.PAUSED
        assert (await client.move("resume", campaign.campaign_id)).status in (
            api.CampaignStatus.SCHEDULED,
            api.CampaignStatus.RUNNING,
        )
        assert (await client.move("cancel", campaign.campaign_id)).status is (
            api.CampaignStatus.CANCELLED
        )
        other_tenant = CampaignClient(nc, "other")
        with pytest.raises(CampaignError, match="404"):
            await other_tenant.get(campaign.campaign_id)
    finally:
        await nc.close()
