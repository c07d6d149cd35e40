"""Twilio Media Streams through the real gateway WebSocket, on a real nats-server."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from gateway_kit import (
    WEBHOOK_FORM,
    EventLog,
    FakeOrchestrator,
    RunningGateway,
    TwilioPeer,
    post_webhook,
    random_ulaw,
    twiml_stream,
    wait_for,
)
from nats.aio.msg import Msg

from voicebus.contracts import subjects
from voicebus.contracts.audio import AudioFrame, decode_frame, decode_mark
from voicebus.contracts.commands import (
    Clear,
    ClearData,
    HangUp,
    HangUpData,
    MaskKeypad,
    MaskKeypadData,
    Transfer,
    TransferData,
)
from voicebus.contracts.events import CallEnded, CallError, CallStarted, DtmfReceived, EndReason
from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16

pytestmark = pytest.mark.integration


@dataclass
class Call:
    """A call set up through the webhook, its stream open and started."""

    gw: RunningGateway
    peer: TwilioPeer
    events: EventLog
    call_id: str
    audio_in: list[Msg]
    played: list[Msg]
    out_seq: int = 0

    async def agent_audio(self, utterance: str, frames: int, *, last: bool = True) -> list[bytes]:
        """Publish ``frames`` 20 ms agent frames on audio.out; the PCM sent."""
        sent = []
        for i in range(frames):
            pcm = bytes([(self.out_seq + i) % 256, 0]) * 160
            frame = AudioFrame(pcm, 8000, self.out_seq, self.out_seq * 20, utterance,
                               last=last and i == frames - 1)  # fmt: skip
            await self.gw.nc.publish(subjects.audio_out(self.call_id), pcm, headers=frame.headers())
            self.out_seq += 1
            sent.append(pcm)
        await self.gw.nc.flush()
        return sent

    async def control(self, command: Clear | HangUp | Transfer | MaskKeypad) -> None:
        await self.gw.nc.publish(command.subject, command.to_bytes())
        await self.gw.nc.flush()


@pytest_asyncio.fixture
async def call(running_gateway: RunningGateway) -> AsyncIterator[Call]:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    response = await post_webhook(gw, "demo", query="ctx_customer=Ada")
    url, params = twiml_stream(response.text)
    call_id = params["call_id"]
    audio_in: list[Msg] = []
    played: list[Msg] = []

    async def on_in(msg: Msg) -> None:
        audio_in.append(msg)

    async def on_played(msg: Msg) -> None:
        played.append(msg)

    await gw.nc.subscribe(subjects.audio_in(call_id), cb=on_in)
    await gw.nc.subscribe(subjects.audio_played(call_id), cb=on_played)
    await gw.nc.flush()
    peer = await TwilioPeer.open(url)
    await peer.connected()
    await peer.start(params)
    await events.one("call.started.v1", call_id)
    try:
        yield Call(gw, peer, events, call_id, audio_in, played)
    finally:
        await peer.close()


async def test_call_started_carries_the_call(call: Call) -> None:
    started = call.events.of("call.started.v1", call.call_id)[0]
    assert isinstance(started, CallStarted)
    assert (started.tenant_id, started.data.agent_id) == ("default", "demo")
    assert started.data.provider == "twilio"
    assert started.data.provider_call_id == WEBHOOK_FORM["CallSid"]
    assert started.data.stream_id == call.peer.stream_sid
    assert (started.data.from_number, started.data.to_number) == ("+14155550100", "+14155550199")
    assert started.data.context == {"customer": "Ada"}
    assert started.data.audio.sample_rate == 8000
    assert started.data.gateway_instance == "gw-test"


async def test_caller_audio_is_decoded_onto_audio_in(call: Call) -> None:
    chunks = [random_ulaw() for _ in range(3)]
    for i, ulaw in enumerate(chunks):
        await call.peer.media(ulaw, chunk=i + 1, timestamp=i * 20 + 5)

    await wait_for(lambda: len(call.audio_in) == 3)
    for i, (msg, ulaw) in enumerate(zip(call.audio_in, chunks, strict=True)):
        assert msg.data == ulaw_to_pcm16(ulaw)
        frame = decode_frame(msg.data, msg.headers)
        assert (frame.sample_rate, frame.seq, frame.ts_ms) == (8000, i + 1, i * 20 + 5)


def _mask(call: Call, masked: bool) -> MaskKeypad:
    return MaskKeypad(tenant_id="default", call_id=call.call_id, source="test/1",
                      data=MaskKeypadData(masked=masked))  # fmt: skip


def _dtmf(call: Call) -> list[DtmfReceived]:
    return [e for e in call.events.of("dtmf.received.v1", call.call_id)
            if isinstance(e, DtmfReceived)]  # fmt: skip


async def _press_until(call: Call, key: str, *, masked: bool) -> None:
    """Press ``key`` until its event shows the keypad as ``masked`` (the command is applied)."""
    async with asyncio.timeout(20):
        while True:
            seen = len(_dtmf(call))
            await call.peer.dtmf(key)
            await wait_for(lambda seen=seen: len(_dtmf(call)) > seen)
            if _dtmf(call)[-1].data.masked == masked:
                return


async def test_a_masked_keypad_stores_stars_and_hands_the_keys_to_the_orchestrator(
    call: Call,
) -> None:
    private: list[DtmfReceived] = []

    async def on_keys(msg: Msg) -> None:
        private.append(DtmfReceived.model_validate_json(msg.data))

    await call.gw.nc.subscribe(subjects.keys(call.call_id), cb=on_keys)
    await call.gw.nc.flush()
    await call.control(_mask(call, True))
    await _press_until(call, "5", masked=True)
    for key in "1234":
        await call.peer.dtmf(key)
    await wait_for(lambda: [k.data.digits for k in private][-4:] == ["1", "2", "3", "4"])
    await wait_for(lambda: len([e for e in _dtmf(call) if e.data.masked]) == len(private))
    stored = [e for e in _dtmf(call) if e.data.masked]
    assert [e.data.digits for e in stored][-4:] == ["*"] * 4
    assert [e.id for e in stored] == [k.id for k in private]  # the same events, masked
    assert not [k for k in private if k.data.masked]

    await call.control(_mask(call, False))
    await _press_until(call, "9", masked=False)
    assert _dtmf(call)[-1].data.digits == "9"


async def test_dtmf_becomes_an_event(call: Call) -> None:
    await call.peer.dtmf("7")
    dtmf = await call.events.one("dtmf.received.v1", call.call_id)
    assert isinstance(dtmf, DtmfReceived)
    assert dtmf.data.digits == "7"


async def test_agent_audio_becomes_media_and_marks(call: Call) -> None:
    sent = await call.agent_audio("u1", 6)  # a mark after frame 5 and after the last frame

    await wait_for(lambda: len(call.peer.of("mark")) == 2)
    media = call.peer.of("media")
    assert [base64.b64decode(m["media"]["payload"]) for m in media] == [
        pcm16_to_ulaw(pcm) for pcm in sent
    ]
    assert all(m["streamSid"] == call.peer.stream_sid for m in call.peer.received)
    events = [m["event"] for m in call.peer.received]
    assert events == ["media"] * 5 + ["mark", "media", "mark"]

    for mark in call.peer.of("mark"):  # Twilio echoes each mark once its audio played
        await call.peer.mark(mark["mark"]["name"])
    await wait_for(lambda: len(call.played) == 2)
    marks = [decode_mark(msg.headers) for msg in call.played]
    assert [(m.utterance_id, m.seq, m.played_ms) for m in marks] == [("u1", 4, 100), ("u1", 5, 120)]
    assert all(msg.data == b"" for msg in call.played)


async def test_clear_drops_the_utterance_and_its_returned_marks(call: Call) -> None:
    await call.agent_audio("u2", 5, last=False)
    await wait_for(lambda: len(call.peer.of("mark")) == 1)

    await call.control(Clear(tenant_id="default", call_id=call.call_id, source="media/m1",
                             data=ClearData(utterance_id="u2")))  # fmt: skip
    await wait_for(lambda: len(call.peer.of("clear")) == 1)
    assert call.peer.of("clear")[0]["streamSid"] == call.peer.stream_sid
    # Twilio returns pending marks after a clear: that audio was dropped, not played.
    await call.peer.mark(call.peer.of("mark")[0]["mark"]["name"])
    await call.agent_audio("u2", 3)  # still in flight on the bus: not forwarded
    await call.agent_audio("u3", 1)  # the next utterance plays
    await wait_for(lambda: len(call.peer.of("mark")) == 2)

    assert len(call.peer.of("media")) == 6
    await call.peer.mark(call.peer.of("mark")[1]["mark"]["name"])
    await wait_for(lambda: len(call.played) == 1)
    assert decode_mark(call.played[0].headers).utterance_id == "u3"


async def test_hangup_waits_for_playback_then_closes(call: Call) -> None:
    await call.agent_audio("bye", 3)
    await wait_for(lambda: len(call.peer.of("mark")) == 1)

    await call.control(HangUp(tenant_id="default", call_id=call.call_id, source="orch/o1"))
    await asyncio.sleep(1.0)
    assert not call.peer.closed.is_set()  # the goodbye has not been played yet
    assert call.events.of("call.ended.v1", call.call_id) == []

    await call.peer.mark(call.peer.of("mark")[0]["mark"]["name"])
    await asyncio.wait_for(call.peer.closed.wait(), timeout=15)
    assert call.peer.close_code == 1000
    ended = await call.events.one("call.ended.v1", call.call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.AGENT_HANGUP
    assert ended.data.duration_s is not None
    assert ended.data.duration_s > 1.0
    await asyncio.sleep(0.5)
    assert len(call.events.of("call.ended.v1", call.call_id)) == 1


async def test_stop_ends_the_call_once(call: Call) -> None:
    await call.peer.stop()
    ended = await call.events.one("call.ended.v1", call.call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.CALLER_HANGUP
    await call.peer.close()
    await asyncio.sleep(0.5)
    assert len(call.events.of("call.ended.v1", call.call_id)) == 1


async def test_closed_socket_ends_the_call(call: Call) -> None:
    await call.peer.close()
    ended = await call.events.one("call.ended.v1", call.call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.CALLER_HANGUP


async def test_transfer_is_reported_unsupported_and_the_call_goes_on(call: Call) -> None:
    await call.control(Transfer(tenant_id="default", call_id=call.call_id, source="orch/o1",
                                data=TransferData(to_number="+14155550123")))  # fmt: skip
    error = await call.events.one("call.error.v1", call.call_id)
    assert isinstance(error, CallError)
    assert "transfer" in error.data.message

    await call.peer.media(random_ulaw(), chunk=1, timestamp=0)
    await wait_for(lambda: len(call.audio_in) == 1)
    assert not call.peer.closed.is_set()


async def test_hangup_waits_for_a_goodbye_that_is_still_being_synthesized(call: Call) -> None:
    await call.control(HangUp(tenant_id="default", call_id=call.call_id, source="orch/o1"))
    await asyncio.sleep(0.05)  # the goodbye's first frame comes after the hang-up
    await call.agent_audio("bye", 2)

    await wait_for(lambda: len(call.peer.of("mark")) == 1)
    assert len(call.peer.of("media")) == 2
    await asyncio.sleep(0.5)
    assert not call.peer.closed.is_set()
    await call.peer.mark(call.peer.of("mark")[0]["mark"]["name"])
    await asyncio.wait_for(call.peer.closed.wait(), timeout=15)
    ended = await call.events.one("call.ended.v1", call.call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.AGENT_HANGUP


async def test_hangup_without_playback_closes_at_once(call: Call) -> None:
    await call.agent_audio("u1", 3)
    await wait_for(lambda: len(call.peer.of("mark")) == 1)
    await call.control(HangUp(tenant_id="default", call_id=call.call_id, source="orch/o1",
                              data=HangUpData(after_playback=False)))  # fmt: skip
    await asyncio.wait_for(call.peer.closed.wait(), timeout=15)
    ended = await call.events.one("call.ended.v1", call.call_id)
    assert isinstance(ended, CallEnded)
    assert ended.data.reason is EndReason.AGENT_HANGUP


async def test_two_calls_do_not_hear_each_other(running_gateway: RunningGateway) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    peers: dict[str, TwilioPeer] = {}
    for sid in ("MZ" + "a" * 32, "MZ" + "b" * 32):
        url, params = twiml_stream((await post_webhook(gw, "demo")).text)
        peer = await TwilioPeer.open(url)
        peer.stream_sid = sid
        await peer.start(params)
        await events.one("call.started.v1", params["call_id"])
        peers[params["call_id"]] = peer
    first, second = peers

    frame = AudioFrame(b"\x01\x00" * 160, 8000, 0, 0, "u1", last=True)
    await gw.nc.publish(subjects.audio_out(first), frame.pcm, headers=frame.headers())
    await wait_for(lambda: len(peers[first].of("mark")) == 1)
    await asyncio.sleep(0.3)
    assert peers[second].received == []
    assert {m["streamSid"] for m in peers[first].received} == {"MZ" + "a" * 32}
    for peer in peers.values():
        await peer.close()
    await wait_for(lambda: len(events.of("call.ended.v1")) == 2)
