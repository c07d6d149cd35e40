"""Per-call commands with delivery confirmation, on a real nats-server."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from voicebus.contracts.commands import Say, SayData
from voicebus.contracts.ids import new_id
from voicebus.runtime.publish import deliver_control

pytestmark = pytest.mark.integration


def _say(call_id: str) -> Say:
    return Say(
        tenant_id="acme", call_id=call_id, source="test/1",
        data=SayData(utterance_id="a1", seq=0, text="Hi there."),
    )  # fmt: skip


async def test_waits_for_a_late_subscriber_and_delivers_once(nats_client: Client) -> None:
    say = _say(new_id())
    received: list[bytes] = []

    async def media(msg: Msg) -> None:
        received.append(msg.data)
        await msg.respond(b"")

    async def subscribe_late() -> None:
        await asyncio.sleep(0.4)  # media claims the call after the greeting is ready
        await nats_client.subscribe(say.subject, cb=media)

    late = asyncio.create_task(subscribe_late())
    assert await deliver_control(nats_client, say, within_s=10.0)
    await late
    await asyncio.sleep(0.2)
    assert received == [say.to_bytes()]


async def test_gives_up_when_nobody_subscribes(nats_client: Client) -> None:
    assert not await deliver_control(nats_client, _say(new_id()), within_s=0.3)


async def test_a_silent_subscriber_is_not_sent_twice(nats_client: Client) -> None:
    say = _say(new_id())
    received: list[bytes] = []

    async def deaf(msg: Msg) -> None:
        received.append(msg.data)

    await nats_client.subscribe(say.subject, cb=deaf)
    assert not await deliver_control(nats_client, say, within_s=5.0, reply_timeout_s=0.3)
    assert len(received) == 1
