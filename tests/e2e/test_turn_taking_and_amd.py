"""Turn-taking and answering-machine detection end to end, every service its own process on a
real NATS and PostgreSQL, the scripted LLM and the real local STT (whisper) and TTS.

Over the agent's greeting, a simulated Twilio caller coughs (a noise burst made here), says
"Mhm, okay." and finally really interrupts: only the last cuts the agent. A notification campaign
calls an Exotel number answered by the stand-in's voicemail (greeting, beep): media's own
detector says "machine" within 3 s, then the end of the beep, and the campaign's voicemail is
left after the beep.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from datetime import time
from typing import Any

import httpx
import nats
import numpy as np
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from voicebus.contracts import campaigns as api
from voicebus.contracts import subjects
from voicebus.contracts.events import (
    AgentReply,
    AgentSpeechInterrupted,
    AgentSpeechStopped,
    AmdDetected,
    AmdMethod,
    AmdResult,
    CallEnded,
    CallEvent,
    EndReason,
    TranscriptFinal,
    parse_event,
)
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.campaign.client import CampaignClient
from voicebus.devkit.campaign.contacts import wait_for
from voicebus.devkit.carriers.exotel import ExotelCarrier
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.stack import DevStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

AGENT = "demo-scripted"
EXOTEL = {"ACCOUNT_SID": "acme1", "API_KEY": "key1", "API_TOKEN": "token-0123456789"}
VOICEMAIL_NUMBER = "+919876500005"  # ends in 0005: the stand-in's answering machine
LEFT = "Hello, this is Acme. Your order has shipped."


def cough(ms: int = 350, seed: int = 3) -> bytes:
    """A cough-like burst: noise with a sharp attack and a fast decay, PCM16 8 kHz."""
    n = 8000 * ms // 1000
    burst = np.random.default_rng(seed).normal(0, 1, n)
    envelope = np.exp(-np.arange(n) / (n / 3))
    envelope[:80] *= np.linspace(0, 1, 80)
    return (burst * envelope * 14000).clip(-32000, 32000).astype("<i2").tobytes()


@pytest.fixture(scope="module")
async def exotel() -> AsyncIterator[ExotelCarrier]:
    """Exotel's API; its callees answer, and 0005 is a voicemail (the default machine)."""
    carrier = ExotelCarrier(
        account_sid=EXOTEL["ACCOUNT_SID"],
        api_key=EXOTEL["API_KEY"],
        api_token=EXOTEL["API_TOKEN"],
        gateway_url="http://127.0.0.1:1",
    )
    yield carrier
    await carrier.stop()


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, exotel: ExotelCarrier
) -> AsyncIterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    log = (data_dir / "services.log").open("w")
    env = {
        "VB_RECORDER_DIR": str(data_dir / "recordings"),
        "VB_GATEWAY_EXOTEL_API_BASE_URL": exotel.base_url,
        "VB_GATEWAY_EXOTEL_CALLER_ID": "+918047491899",
    } | {f"VB_GATEWAY_EXOTEL_{name}": value for name, value in EXOTEL.items()}
    dev = DevStack(data_dir, out=log, local_llm=False, env=env)
    try:
        await dev.start(ready_timeout=240.0)
        gateway = next(s.url for s in dev.services if s.name == "gateway")
        exotel.gateway_url = exotel.public_url = gateway
        await exotel.start()
        yield dev
        # Nothing any service did was outside what its NATS user is allowed.
        assert dev.permission_violations() == []
    finally:
        await dev.stop()
        log.close()


async def _events_of(nats_url: str, call_id: str) -> list[CallEvent]:
    nc = await nats.connect(nats_url)
    events: list[CallEvent] = []
    try:
        sub = await nc.jetstream().subscribe(
            subjects.evt_filter(call_id=call_id),
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except nats.errors.TimeoutError:
                break
            events.append(parse_event(msg.data))
        await sub.unsubscribe()
    finally:
        await nc.drain()
    return events


async def _until(nats_url: str, call_id: str, kind: type[Any], count: int = 1) -> list[Any]:
    async with asyncio.timeout(120):
        while True:
            events = await _events_of(nats_url, call_id)
            if sum(isinstance(e, kind) for e in events) >= count:
                return events
            await asyncio.sleep(0.5)


async def _pauses(stack: DevStack, outcome: str) -> float:
    """Media's count of agent pauses that ended so (one media process in the stack)."""
    media = next(s.url for s in stack.services if s.name == "media")
    async with httpx.AsyncClient(trust_env=False) as client:
        text = (await client.get(f"{media}/metrics")).text
    pattern = rf'^voicebus_media_agent_pauses_total{{outcome="{outcome}"}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def _over_the_greeting(stack: DevStack, pcm: bytes | None, text: str | None) -> tuple[
    str, Any
]:  # fmt: skip
    """Call the agent; once 500 ms of its greeting played, play ``pcm`` (or say ``text``)."""
    gateway = next(s.url for s in stack.services if s.name == "gateway")
    async with TwilioCaller(gateway, DEV_TWILIO_AUTH_TOKEN, AGENT, timeout=20.0) as call:
        assert call.call_id is not None
        assert await call.wait_for_agent_audio(ms=500, timeout=60)
        if pcm is not None:
            await call.say_pcm(pcm)
        else:
            assert text is not None
            await call.say_text(text)
        assert await call.wait_for_agent_silence(quiet_ms=1500, timeout=60)
        await asyncio.sleep(1.0)  # a transcript in flight lands before the call ends
    return call.call_id, await call.hang_up()


def _greeting_played_whole(events: list[CallEvent], result: Any) -> None:
    assert not [e for e in events if isinstance(e, AgentSpeechInterrupted)]
    assert result.clears_received == 0
    replies = [e for e in events if isinstance(e, AgentReply)]
    assert len(replies) == 1, [r.data.text for r in replies]  # the greeting, nothing more
    stopped = [e for e in events if isinstance(e, AgentSpeechStopped)]
    assert [s.data.text for s in stopped] == [replies[0].data.text]
    assert result.heard_ms >= stopped[0].data.played_ms - 100  # every word reached the caller


async def test_a_cough_does_not_stop_the_agent(stack: DevStack) -> None:
    assert stack.nats_url is not None
    call_id, result = await _over_the_greeting(stack, cough(), None)
    events = await _until(stack.nats_url, call_id, CallEnded)
    _greeting_played_whole(events, result)
    assert not [e for e in events if isinstance(e, TranscriptFinal)]


async def test_a_backchannel_pauses_the_agent_which_resumes_and_ignores_it(
    stack: DevStack,
) -> None:
    assert stack.nats_url is not None
    resumed_before = await _pauses(stack, "resumed")
    call_id, result = await _over_the_greeting(stack, None, "Mhm, okay.")
    events = await _until(stack.nats_url, call_id, CallEnded)
    _greeting_played_whole(events, result)
    finals = [e for e in events if isinstance(e, TranscriptFinal)]
    assert len(finals) == 1
    assert finals[0].data.backchannel is True, finals[0].data.text
    assert await _pauses(stack, "resumed") == resumed_before + 1  # paused, then went on


async def test_a_real_interruption_cuts_the_agent_and_is_answered(stack: DevStack) -> None:
    assert stack.nats_url is not None
    call_id, result = await _over_the_greeting(stack, None, "Wait, where is my order 1234?")
    events = await _until(stack.nats_url, call_id, CallEnded)
    cut = [e for e in events if isinstance(e, AgentSpeechInterrupted)]
    assert len(cut) == 1
    assert len(cut[0].data.text_heard) < len(cut[0].data.text_planned)
    assert result.clears_received >= 1
    finals = [e for e in events if isinstance(e, TranscriptFinal)]
    assert [f.data.backchannel for f in finals] == [False]
    assert events.index(cut[0]) < events.index(finals[0])  # cut before the turn is taken
    replies = [e.data.text for e in events if isinstance(e, AgentReply)]
    assert any("1234" in text for text in replies[1:]), replies


async def test_amd_on_an_exotel_call_to_a_voicemail_leaves_the_message_after_the_beep(
    stack: DevStack, exotel: ExotelCarrier
) -> None:
    assert stack.nats_url is not None
    nc = await nats.connect(stack.nats_url)
    client = CampaignClient(nc, "default")
    try:
        all_day = [api.TimeRange(start=time(0), end=time(23, 59, 59))]
        spec = api.CampaignSpec(
            name="shipping notice", agent_id=AGENT, caller_ids=["+918047491899"],
            provider="exotel", mode=api.CampaignMode.NOTIFICATION,
            message="Your order has shipped.", voicemail_message=LEFT,
            amd=api.AmdPolicy.VOICEMAIL, detect_machine=True,
            windows={d: list(all_day) for d in api.Weekday},
        )  # fmt: skip
        campaign = await client.create(spec)
        await client.upload(
            campaign.campaign_id, io.BytesIO(f"phone\n{VOICEMAIL_NUMBER}\n".encode())
        )
        await client.move("start", campaign.campaign_id)

        async def completed() -> bool:
            found = await client.get(campaign.campaign_id)
            return found.status is api.CampaignStatus.COMPLETED

        await wait_for(completed, timeout=180, what="the campaign to complete")
        rows = [r async for r in client.report(campaign.campaign_id)]
    finally:
        await nc.drain()
    call_id = str(rows[0].last_call_id)
    events = await _until(stack.nats_url, call_id, CallEnded)
    amd = [e.data for e in events if isinstance(e, AmdDetected)]
    assert [(r.phone, r.outcome) for r in rows] == [(VOICEMAIL_NUMBER, "voicemail")], [
        e.type for e in events
    ]
    assert [(a.detector, a.result) for a in amd] == [
        ("media", AmdResult.MACHINE), ("media", AmdResult.MACHINE_END_BEEP),
    ]  # fmt: skip
    assert amd[0].detection_ms is not None
    assert amd[0].detection_ms <= 3000
    assert amd[0].method in (AmdMethod.GREETING, AmdMethod.CADENCE)
    assert amd[0].confidence is not None
    assert amd[1].method is AmdMethod.BEEP
    assert next(e for e in events if isinstance(e, CallEnded)).data.reason is (
        EndReason.AGENT_HANGUP
    )
    dialed = next(iter(exotel.calls.values()))
    await dialed.ended.wait()
    assert dialed.error is None, dialed.error
    assert dialed.beep_end_ms is not None
    assert dialed.result is not None
    spans = dialed.result.heard_spans
    assert spans, "the voicemail recorded no message"
    assert spans[0][0] >= dialed.beep_end_ms - 20  # nothing played before the beep ended
    assert dialed.result.heard_ms >= 1500  # the message itself, not a blip
