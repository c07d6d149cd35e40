"""A notification campaign: the message is spoken with barge-in off, then hang-up;
machines get the voicemail; a campaign's own DNC list, pause and recordings."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from datetime import time
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from voicebus.campaigns.app import build
from voicebus.campaigns.clock import FakeClock
from voicebus.campaigns.settings import CampaignsSettings
from voicebus.contracts import campaigns as api
from voicebus.contracts.commands import Say
from voicebus.contracts.events import (
    CallAnalyzed,
    CallAnalyzedData,
    NotificationDelivered,
    RecordingReady,
    RecordingReadyData,
    SuccessEvaluation,
    parse_event,
)
from voicebus.devkit.campaign.client import CampaignClient
from voicebus.devkit.campaign.contacts import MONDAY_14_UTC, wait_for
from voicebus.devkit.campaign.simulator import SimulatedProvider

pytestmark = pytest.mark.integration

ANSWER, MACHINE, BLOCKED = "+442079460001", "+442079460008", "+442079460002"


@pytest.fixture
async def nc(embedded_nats_factory: Callable[..., Any], database_url: str) -> AsyncIterator[Client]:
    server = embedded_nats_factory()
    settings = CampaignsSettings(
        nats_url=server.url, database_url=database_url, instance_id="c1", tick_s=0.05,
        log_level="WARNING",
    )  # fmt: skip
    service, _app = build(settings, FakeClock(MONDAY_14_UTC))
    await service.start()
    client = await nats.connect(server.url)
    try:
        yield client
    finally:
        await client.close()
        await service.stop()


async def test_a_notification_campaign_speaks_hangs_up_and_reports(nc: Client) -> None:
    said: list[Say] = []

    async def on_say(msg: Msg) -> None:
        said.append(Say.model_validate_json(msg.data))

    await nc.subscribe("vb.ctl.*.say", cb=on_say)  # alongside the simulator's own answer
    sim = SimulatedProvider(nc, talk_s=0.3)
    await sim.start()
    client = CampaignClient(nc, "acme")
    try:
        spec = api.CampaignSpec(
            name="outage notice", agent_id="demo", caller_ids=["+442079460999"],
            mode=api.CampaignMode.NOTIFICATION, message="Your service is back.",
            voicemail_message="Hello, your service is back.", amd=api.AmdPolicy.VOICEMAIL,
            windows={d: [api.TimeRange(start=time(7), end=time(22))] for d in api.Weekday},
        )  # fmt: skip
        campaign = await client.create(spec)
        body = f"phone\n{ANSWER}\n{MACHINE}\n{BLOCKED}\n".encode()
        await client.upload(campaign.campaign_id, io.BytesIO(body))
        assert await client.dnc("add", [BLOCKED], campaign.campaign_id) == 1
        await client.move("start", campaign.campaign_id)
        paused = await client.move("pause", campaign.campaign_id)
        assert paused.status is api.CampaignStatus.PAUSED
        await client.move("resume", campaign.campaign_id)

        async def completed() -> bool:
            found = await client.get(campaign.campaign_id)
            return found.status is api.CampaignStatus.COMPLETED

        await wait_for(completed, what="the notification campaign to complete")
        rows = {r.phone: r async for r in client.report(campaign.campaign_id)}
        call_of = {r.phone: r.last_call_id for r in rows.values()}
        ready = RecordingReady(
            tenant_id="acme", call_id=str(call_of[ANSWER]), source="recorder/1",
            data=RecordingReadyData(recording_id="rec-1", uri="file:rec-1.wav", sample_rate=8000,
                                    duration_s=1.0, bytes=32044, sha256="0" * 64),
        )  # fmt: skip
        await nc.jetstream().publish(ready.subject, ready.to_bytes())

        async def recorded() -> bool:
            async for r in client.report(campaign.campaign_id):
                if r.phone == ANSWER:
                    return r.recording_id == "rec-1"
            return False

        await wait_for(recorded, what="the recording id in the report")

        analysed = CallAnalyzed(
            tenant_id="acme", call_id=str(call_of[ANSWER]), source="orchestrator/1",
            data=CallAnalyzedData(agent_id="demo", ok=True, disposition="informed",
                                  success=SuccessEvaluation(passed=True, reason="heard it")),
        )  # fmt: skip
        await nc.jetstream().publish(analysed.subject, analysed.to_bytes())

        async def judged() -> bool:
            async for r in client.report(campaign.campaign_id):
                if r.phone == ANSWER:
                    return (r.disposition, r.success) == ("informed", "pass")
            return False

        await wait_for(judged, what="the disposition and success in the report")
    finally:
        await sim.stop()

    assert {p: (r.state, r.outcome) for p, r in rows.items()} == {
        ANSWER: ("done", "answered"),
        MACHINE: ("done", "voicemail"),
        BLOCKED: ("dnc", None),
    }
    assert {d.to_number for d in sim.dials} == {ANSWER, MACHINE}
    texts = {s.call_id: s.data for s in said}
    assert texts[str(call_of[ANSWER])].text == "Your service is back."
    assert texts[str(call_of[MACHINE])].text == "Hello, your service is back."
    assert not any(s.allow_interruptions for s in texts.values())
    assert {str(call_of[ANSWER]), str(call_of[MACHINE])} <= sim.hangups
    delivered = await _events(nc, "notification.delivered")
    assert {(e.call_id, e.data.to_machine) for e in delivered} == {
        (str(call_of[ANSWER]), False),
        (str(call_of[MACHINE]), True),
    }


async def _events(nc: Client, event_type: str) -> list[NotificationDelivered]:
    sub = await nc.jetstream().subscribe(f"vb.evt.acme.*.{event_type}", ordered_consumer=True)
    out: list[NotificationDelivered] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return out
            event = parse_event(msg.data)
            assert isinstance(event, NotificationDelivered)
            out.append(event)
    finally:
        await sub.unsubscribe()
