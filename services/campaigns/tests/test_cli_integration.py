"""``voicebus campaign`` against a real campaigns service: create, upload, lifecycle, errors,
status and report; and the service's request/reply answers to bad requests."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import time
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from voicebus.campaigns.app import build
from voicebus.campaigns.clock import FakeClock
from voicebus.campaigns.settings import CampaignsSettings
from voicebus.contracts import campaigns as api
from voicebus.devkit.campaign.client import CampaignClient, CampaignError
from voicebus.devkit.campaign.contacts import MONDAY_14_UTC, wait_for
from voicebus.devkit.campaign.simulator import SimulatedProvider

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


async def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "voicebus.devkit.cli", "campaign", *args]
    return await asyncio.to_thread(
        subprocess.run,
        [*command, "--nats-url", url, "--tenant", "acme"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_command_runs_a_campaign_end_to_end(service_url: str, tmp_path: Path) -> None:
    spec = tmp_path / "campaign.yaml"
    spec.write_text(
        "name: cli\nagent_id: demo\ncaller_ids: ['+442079460999']\nconcurrency: 5\n"
        "windows: {mon: [{start: '07:00', end: '22:00'}]}\n"
    )
    created = await _cli(service_url, "create", "--spec", str(spec))
    assert created.returncode == 0, created.stderr
    campaign_id = created.stdout.strip().splitlines()[-1]
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone,name\n+442079460001,Ada\n+442079460002,Bob\nnope,Cy\n")
    uploaded = await _cli(service_url, "upload", campaign_id, str(contacts))
    assert uploaded.returncode == 0, uploaded.stderr
    assert "loaded 2" in uploaded.stdout
    assert "4" in uploaded.stdout  # the rejected row's line number is listed
    nc = await nats.connect(service_url)
    sim = SimulatedProvider(nc)
    await sim.start()
    try:
        assert (await _cli(service_url, "start", campaign_id)).returncode == 0
        client = CampaignClient(nc, "acme")

        async def completed() -> bool:
            return (await client.get(campaign_id)).status is api.CampaignStatus.COMPLETED

        await wait_for(completed, what="the campaign to complete")
    finally:
        await sim.stop()
        await nc.close()
    status = await _cli(service_url, "status", campaign_id)
    assert "completed" in status.stdout
    watched = await _cli(service_url, "status", campaign_id, "--watch")  # ends with the campaign
    assert watched.returncode == 0, watched.stderr
    assert "answered" in watched.stdout
    report = await _cli(service_url, "report", campaign_id)
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert {r["phone"]: r["outcome"] for r in rows} == {
        "+442079460001": "answered",
        "+442079460002": "answered",
    }
    again = await _cli(service_url, "start", campaign_id)
    assert again.returncode == 1
    assert "409 invalid_transition" in again.stderr


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
