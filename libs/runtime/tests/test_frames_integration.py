"""The frame publisher against a real nats-server: headers arrive as nats-py reads them,
an outage keeps the newest frames, and it reconnects by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import nats
import pytest
from nats.aio.msg import Msg

from voicebus.contracts.audio import decode_frame, header_block
from voicebus.runtime.frames import FramePublisher
from voicebus.runtime.settings import ServiceSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class _Settings(ServiceSettings):
    service_name: ClassVar[str] = "frames-test"
    default_http_port: ClassVar[int] = 9


async def _until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_frames_arrive_with_their_headers(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    received: list[Msg] = []
    nc = await nats.connect(server.url)

    async def on_msg(msg: Msg) -> None:
        received.append(msg)

    await nc.subscribe("vb.audio.c1.in", cb=on_msg)
    await nc.flush()
    frames = FramePublisher(_Settings(nats_url=server.url), name="test/frames")
    await frames.start()
    try:
        for seq in range(100):
            assert frames.publish(b"vb.audio.c1.in", header_block(8000, seq, seq * 20), b"\x01\x02")
        await _until(lambda: len(received) == 100)
        decoded = [decode_frame(m.data, m.headers) for m in received]
        assert [f.seq for f in decoded] == list(range(100))  # in order
        assert {(f.sample_rate, f.pcm) for f in decoded} == {(8000, b"\x01\x02")}
        assert decoded[7].ts_ms == 140
    finally:
        await frames.close()
        await nc.drain()


async def test_an_outage_keeps_the_newest_frames_and_reconnects(
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory()
    frames = FramePublisher(_Settings(nats_url=server.url), name="test/frames", max_pending=4096)
    await frames.start()
    try:
        await asyncio.to_thread(server.stop)
        await _until(lambda: not frames.connected)
        payload = bytes(320)
        results = [
            frames.publish(b"vb.audio.c2.in", header_block(8000, seq, 0), payload)
            for seq in range(50)
        ]
        assert results[0] is True
        assert False in results  # the backlog filled: older frames went
        assert frames.dropped > 0

        await asyncio.to_thread(server.start)
        nc = await nats.connect(server.url)
        received: list[Msg] = []

        async def on_msg(msg: Msg) -> None:
            received.append(msg)

        await nc.subscribe("vb.audio.c2.in", cb=on_msg)
        await nc.flush()
        await _until(lambda: frames.connected)
        frames.publish(b"vb.audio.c2.in", header_block(8000, 999, 0), payload)
        await _until(lambda: any(decode_frame(m.data, m.headers).seq == 999 for m in received))
        await nc.drain()
    finally:
        await frames.close()
