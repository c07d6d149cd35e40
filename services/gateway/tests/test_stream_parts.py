"""The three parts of a live media call, each against fakes of the protocols it uses."""

from __future__ import annotations

import asyncio
import json

import pytest
from stream_fakes import FakeFrames, FakeMsg, FakeProviderControl, FakeSocket

from voicebus.contracts.audio import encode_headers
from voicebus.contracts.commands import (
    Clear,
    ClearData,
    HangUp,
    HangUpData,
    SendDtmf,
    SendDtmfData,
    Transfer,
    TransferData,
)
from voicebus.contracts.events import EndReason
from voicebus.gateway.calls import PlaybackTracker
from voicebus.gateway.live import AudioChunker
from voicebus.gateway.parameters import CallIdentity
from voicebus.gateway.providers.base import MarkPlayed, MediaIn, StreamStart
from voicebus.gateway.providers.twilio.stream import TwilioCodec
from voicebus.gateway.stream.bus_to_caller import BusToCaller
from voicebus.gateway.stream.call_control import CallControl
from voicebus.gateway.stream.caller_to_bus import CallerToBus

pytestmark = pytest.mark.unit

CALL = CallIdentity(call_id="c1", tenant_id="acme", agent_id="demo")
_IDS = {"tenant_id": "acme", "call_id": "c1", "source": "orchestrator/o1"}


def _inbound(frames: FakeFrames, tracker: PlaybackTracker | None = None) -> CallerToBus:
    return CallerToBus("twilio", "c1", 8000, frames, tracker or PlaybackTracker(5))


def test_caller_audio_becomes_one_frame_with_its_header_block() -> None:
    frames = FakeFrames()
    _inbound(frames).media(MediaIn(bytes(320), 7, 140))
    assert frames.published == [
        (
            b"vb.audio.c1.in",
            b"NATS/1.0\r\nVB-Rate: 8000\r\nVB-Seq: 7\r\nVB-Ts: 140\r\n\r\n",
            bytes(320),
        )
    ]


def test_a_long_chunk_goes_out_as_20_ms_frames() -> None:
    frames = FakeFrames()
    _inbound(frames).media(MediaIn(bytes(1600), None, 1000))  # 100 ms at 8 kHz
    assert [len(p) for _, _, p in frames.published] == [320] * 5
    assert [h.split(b"VB-Ts: ")[1][:4] for _, h, _ in frames.published] == [
        b"1000", b"1020", b"1040", b"1060", b"1080"
    ]  # fmt: skip


def test_audio_nats_cannot_take_is_dropped_not_raised() -> None:
    frames = FakeFrames(full=True)
    _inbound(frames).media(MediaIn(bytes(320), 1, 20))
    assert frames.published == []


def test_an_echoed_mark_publishes_the_playback_it_confirms_once() -> None:
    frames, tracker = FakeFrames(), PlaybackTracker(1)
    name = tracker.sent(_frame(seq=3, utterance="u1"))
    assert name is not None
    inbound = _inbound(frames, tracker)
    inbound.mark(MarkPlayed(name))
    inbound.mark(MarkPlayed(name))  # echoed twice: unknown the second time
    inbound.mark(MarkPlayed("never-sent"))
    assert frames.published == [
        (
            b"vb.audio.c1.played",
            b"NATS/1.0\r\nVB-Utt: u1\r\nVB-Seq: 3\r\nVB-Played-Ms: 20\r\n\r\n",
            b"",
        )
    ]


def _frame(seq: int, utterance: str, last: bool = False):  # type: ignore[no-untyped-def]
    from voicebus.contracts.audio import decode_frame

    return decode_frame(bytes(320), encode_headers(8000, seq, seq * 20, utterance, last=last))


def _outbound(socket: FakeSocket, mark_every: int = 5, chunk: int = 0) -> BusToCaller:
    codec = TwilioCodec()
    codec.bind(StreamStart("MZ1", "CA1"))
    return BusToCaller("c1", codec, socket, PlaybackTracker(mark_every), AudioChunker(chunk))


def _agent(seq: int, utterance: str = "u1", last: bool = False, rate: int = 8000) -> FakeMsg:
    return FakeMsg(bytes(320), encode_headers(rate, seq, seq * 20, utterance, last=last))


def _events(socket: FakeSocket) -> list[str]:
    return [json.loads(m)["event"] for m, _ in socket.sent]


async def test_agent_frames_become_media_messages_with_a_mark_every_five() -> None:
    socket = FakeSocket()
    outbound = _outbound(socket)
    for seq in range(6):
        await outbound.on_audio(_agent(seq))
    await outbound.on_audio(_agent(6, last=True))
    assert _events(socket) == ["media"] * 5 + ["mark"] + ["media"] * 2 + ["mark"]
    assert all(not binary for _, binary in socket.sent)
    assert not outbound.all_played


async def test_clear_drops_the_cut_utterance_still_on_the_bus() -> None:
    socket = FakeSocket()
    outbound = _outbound(socket)
    await outbound.on_audio(_agent(0))
    outbound.clear("u1")
    await outbound.on_audio(_agent(1))  # still arriving from the bus: dropped
    await outbound.on_audio(_agent(0, utterance="u2"))
    assert _events(socket) == ["media", "clear", "media"]


async def test_bad_agent_frames_are_dropped_and_nothing_is_sent_once_closing() -> None:
    socket = FakeSocket()
    outbound = _outbound(socket)
    await outbound.on_audio(FakeMsg(bytes(320), None))
    await outbound.on_audio(_agent(0, rate=16000))  # not the call's rate
    assert socket.sent == []
    socket.closing = True
    await outbound.on_audio(_agent(1))
    assert socket.sent == []


async def test_larger_messages_where_the_provider_wants_them() -> None:
    socket = FakeSocket()
    outbound = _outbound(socket, chunk=3200)  # Exotel: 100 ms at least
    for seq in range(4):
        await outbound.on_audio(_agent(seq))
    assert socket.sent == []
    assert outbound.flush_mark()  # a hang-up drains: the gathered audio goes first, padded
    assert _events(socket) == ["media", "mark"]


def _control(
    socket: FakeSocket, provider: FakeProviderControl, outbound: BusToCaller
) -> CallControl:
    return CallControl(
        CALL, "CA1", 8000, 0, outbound, socket, provider, drain_timeout_s=2.0, quiet_s=0.1
    )


def _ctl(command: Clear | HangUp | Transfer | SendDtmf) -> FakeMsg:
    return FakeMsg(command.model_dump_json().encode())


async def test_clear_acts_at_once() -> None:
    socket = FakeSocket()
    outbound = _outbound(socket)
    control = _control(socket, FakeProviderControl(), outbound)
    await control.on_control(_ctl(Clear(**_IDS, data=ClearData(utterance_id="u1"))))
    assert _events(socket) == ["clear"]


async def test_hang_up_after_playback_waits_for_the_marks() -> None:
    socket = FakeSocket()
    outbound = _outbound(socket, mark_every=1)
    control = _control(socket, FakeProviderControl(), outbound)
    await outbound.on_audio(_agent(0))
    name = json.loads(socket.sent[-1][0])["mark"]["name"]
    await control.on_control(_ctl(HangUp(**_IDS, data=HangUpData(after_playback=True))))
    await asyncio.sleep(0.3)
    assert socket.ended == []  # the mark is not echoed yet
    outbound_tracker_echo = outbound._tracker.echoed(name)  # the caller heard it
    assert outbound_tracker_echo is not None
    async with asyncio.timeout(2):
        while not socket.ended:
            await asyncio.sleep(0.02)
    assert socket.ended == [(EndReason.AGENT_HANGUP, 1000)]
    await control.stop()


async def test_transfer_marks_the_end_as_a_transfer_unless_refused() -> None:
    socket, provider = FakeSocket(), FakeProviderControl()
    control = _control(socket, provider, _outbound(socket))
    await control.on_control(_ctl(Transfer(**_IDS, data=TransferData(to_number="+14155550111"))))
    await asyncio.sleep(0.05)
    assert control.transferring
    assert len(provider.transfers) == 1
    refused = _control(socket, FakeProviderControl(accepts=False), _outbound(socket))
    await refused.on_control(_ctl(Transfer(**_IDS, data=TransferData(to_number="+14155550111"))))
    await asyncio.sleep(0.05)
    assert not refused.transferring


async def test_keys_go_in_band_when_the_provider_cannot_send_them() -> None:
    socket = FakeSocket()
    control = _control(socket, FakeProviderControl(accepts=False), _outbound(socket))
    await control.on_control(_ctl(SendDtmf(**_IDS, data=SendDtmfData(digits="12"))))
    await asyncio.sleep(0.05)
    assert _events(socket)
    assert set(_events(socket)) == {"media"}
    await control.stop()
