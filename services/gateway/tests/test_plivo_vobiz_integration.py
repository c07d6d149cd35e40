"""Plivo and Vobiz calls through the real gateway (uvicorn, real nats-server), placed by the
devkit's simulated callers, which speak each provider's protocol from its documentation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from gateway_kit import (
    EventLog,
    FakeOrchestrator,
    NoAccounts,
    RunningGateway,
    serve_gateway,
    wait_for,
)
from nats.aio.msg import Msg

from voicebus.contracts import subjects
from voicebus.contracts.audio import AudioFrame, decode_frame, decode_mark
from voicebus.contracts.commands import Clear, ClearData, HangUp
from voicebus.contracts.events import CallEnded, CallStarted, DtmfReceived, EndReason
from voicebus.devkit.caller import CallRejectedError, ToneVoice
from voicebus.devkit.caller.audio import resample, tone
from voicebus.devkit.caller.plivo import PlivoCaller
from voicebus.devkit.caller.vobiz import VobizCaller

pytestmark = pytest.mark.integration

TOKEN = "dev-secret"  # the gateway's development placeholder for both providers
CALLERS = {"plivo": PlivoCaller, "vobiz": VobizCaller}


def caller(
    kind: str, gw: RunningGateway, token: str = TOKEN, tenant: str | None = None
) -> PlivoCaller:
    return CALLERS[kind](
        gw.base_url,
        token,
        "demo",
        {"customer": "Ada"},
        public_url=gw.settings.public_url,
        voice=ToneVoice(),
        timeout=15.0,
        tenant=tenant,
    )


async def agent_says(gw: RunningGateway, call_id: str, utterance: str, frames: int) -> None:
    pcm = tone(20.0 * frames, 440.0)
    for i in range(frames):
        chunk = pcm[i * 320 : (i + 1) * 320]
        frame = AudioFrame(chunk, 8000, i, i * 20, utterance, last=i == frames - 1)
        await gw.nc.publish(subjects.audio_out(call_id), chunk, headers=frame.headers())
    await gw.nc.flush()


@pytest.mark.parametrize("kind", ["plivo", "vobiz"])
async def test_a_call_in_both_directions(running_gateway: RunningGateway, kind: str) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    audio_in: list[Msg] = []
    played: list[Msg] = []

    async with caller(kind, gw) as call:
        call_id = call.call_id
        assert call_id is not None

        async def on_in(msg: Msg) -> None:
            audio_in.append(msg)

        async def on_played(msg: Msg) -> None:
            played.append(msg)

        await gw.nc.subscribe(subjects.audio_in(call_id), cb=on_in)
        await gw.nc.subscribe(subjects.audio_played(call_id), cb=on_played)
        started = await events.one("call.started.v1", call_id)
        assert isinstance(started, CallStarted)
        assert started.data.provider == kind
        assert started.data.provider_call_id == call.call_sid
        assert started.data.stream_id == call.stream_sid
        # Vobiz does not sign the query string: its ctx_* values are not trusted.
        assert started.data.context == ({} if kind == "vobiz" else {"customer": "Ada"})
        assert started.data.audio.sample_rate == 8000
        initiated = await events.one("call.initiated.v1", call_id)
        assert initiated.data.provider == kind  # type: ignore[union-attr]

        # Caller audio reaches audio.in as PCM 8 kHz, numbered by the provider's chunks.
        await wait_for(lambda: len(audio_in) >= 5)
        frame = decode_frame(audio_in[0].data, audio_in[0].headers)
        assert frame.sample_rate == 8000
        assert len(frame.pcm) == 320

        # Agent audio plays at the caller; its checkpoints come back as playback marks.
        await agent_says(gw, call_id, "u1", 10)
        assert await call.wait_for_agent_audio(ms=200, timeout=15)
        await wait_for(lambda: len(played) == 2)
        marks = [decode_mark(m.headers) for m in played]
        assert [(m.utterance_id, m.played_ms) for m in marks] == [("u1", 100), ("u1", 200)]

        await call.send_dtmf("5")
        dtmf = await events.one("dtmf.received.v1", call_id)
        assert isinstance(dtmf, DtmfReceived)
        assert dtmf.data.digits == "5"
    result = await call.hang_up()

    ended = await events.one("call.ended.v1", call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.CALLER_HANGUP
    assert result.protocol_errors == []
    assert result.marks_received >= 2


@pytest.mark.parametrize("kind", ["plivo", "vobiz"])
async def test_clear_and_agent_hang_up(running_gateway: RunningGateway, kind: str) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    async with caller(kind, gw) as call:
        call_id = call.call_id
        assert call_id is not None
        await events.one("call.started.v1", call_id)
        await agent_says(gw, call_id, "long", 100)  # two seconds
        assert await call.wait_for_agent_audio(ms=100, timeout=15)
        clear = Clear(
            tenant_id="default",
            call_id=call_id,
            source="media/m1",
            data=ClearData(utterance_id="long"),
        )
        await gw.nc.publish(clear.subject, clear.to_bytes())
        await wait_for(lambda: call.result().clears_received == 1)

        hang_up = HangUp(tenant_id="default", call_id=call_id, source="orch/o1")
        await gw.nc.publish(hang_up.subject, hang_up.to_bytes())
        assert await call.wait_closed(timeout=30)
        assert call.server_closed
    ended = await events.one("call.ended.v1", call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.AGENT_HANGUP
    assert call.result().protocol_errors == []
    assert call.result().heard_ms < 2000  # the clear dropped the rest


@pytest.mark.parametrize("kind", ["plivo", "vobiz"])
async def test_a_wrong_signature_is_refused(running_gateway: RunningGateway, kind: str) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    with pytest.raises(CallRejectedError) as refused:
        await caller(kind, gw, token="not-the-token-0123456789").start()
    assert refused.value.status == 403
    error = await events.one("call.error.v1")
    assert error.data.code == "signature_invalid"  # type: ignore[union-attr]


async def test_l16_at_16k_end_to_end(
    embedded_nats_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer asks for 16 kHz linear PCM: the call runs at 16 kHz on the bus."""
    monkeypatch.setenv("VB_GATEWAY_VOBIZ_CONTENT_TYPE", "audio/x-l16;rate=16000")
    async with serve_gateway(embedded_nats_factory().url) as gw:
        await FakeOrchestrator(["demo"]).start(gw.nc)
        events = await EventLog().start(gw.nc)
        audio_in: list[Msg] = []

        async def on_in(msg: Msg) -> None:
            audio_in.append(msg)

        async with caller("vobiz", gw) as call:
            call_id = call.call_id
            assert call_id is not None
            await gw.nc.subscribe(subjects.audio_in(call_id), cb=on_in)
            started = await events.one("call.started.v1", call_id)
            assert isinstance(started, CallStarted)
            assert started.data.audio.sample_rate == 16000
            await wait_for(lambda: len(audio_in) >= 3)
            frame = decode_frame(audio_in[0].data, audio_in[0].headers)
            assert (frame.sample_rate, len(frame.pcm)) == (16000, 640)

            pcm = resample(tone(400.0), 8000, 16000)
            for i in range(20):
                chunk = pcm[i * 640 : (i + 1) * 640]
                out = AudioFrame(chunk, 16000, i, i * 20, "u16", last=i == 19)
                await gw.nc.publish(subjects.audio_out(call_id), chunk, headers=out.headers())
            assert await call.wait_for_agent_audio(ms=300, timeout=15)
        result = await call.hang_up()
        assert result.protocol_errors == []
        await events.one("call.ended.v1", call_id)


@pytest.mark.parametrize("kind", ["plivo", "vobiz"])
async def test_a_tenants_webhook_is_checked_with_its_account(
    running_gateway: RunningGateway, kind: str
) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    await NoAccounts().start(gw.nc)
    events = await EventLog().start(gw.nc)
    # The default tenant's account is the one in the gateway's settings.
    async with caller(kind, gw, tenant="default"):
        started = await events.one("call.started.v1")
        assert isinstance(started, CallStarted)
        assert started.tenant_id == "default"
        assert started.data.provider == kind
    with pytest.raises(CallRejectedError) as refused:
        await caller(kind, gw, tenant="acme").start()  # no account stored for tenant acme
    assert refused.value.status == 403
