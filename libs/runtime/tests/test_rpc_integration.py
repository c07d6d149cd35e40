"""The request/reply kit on a real nats-server: typed replies, faults, retries within budget."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import Field
from sqlalchemy.exc import OperationalError

from voicebus.contracts.events._base import Data
from voicebus.contracts.rpc import Reply
from voicebus.runtime.rpc import (
    REQUEST_ID,
    BadReply,
    NotFound,
    OwnerTimeout,
    OwnerUnavailable,
    RemoteError,
    RpcClient,
    responder,
)

pytestmark = pytest.mark.integration


class GetThing(Data):
    name: str = Field(min_length=1, max_length=8)


class ThingReply(Reply):
    size: int | None = None
    request_id: str | None = None


def _subject() -> str:
    return f"vb.rpc.test{uuid.uuid4().hex[:8]}.things.get"


@pytest_asyncio.fixture
async def broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    broker = NatsBroker(nats_url, logger=None)
    yield broker
    await broker.stop()


async def _serve(broker: NatsBroker, subject: str) -> None:
    async def get(request: GetThing) -> ThingReply:
        if request.name == "ghost":
            raise NotFound("no thing 'ghost'", code="thing_not_found")
        if request.name == "db":
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError())
        if request.name == "bug":
            raise ZeroDivisionError
        return ThingReply(ok=True, size=len(request.name), request_id=REQUEST_ID.get())

    responder(broker, subject, GetThing, ThingReply, get, queue="test-rpc")
    await broker.start()
    await broker.config.connection_state.connection.flush()


async def test_an_answer_and_each_fault_keep_their_status(
    broker: NatsBroker, nats_client: Client
) -> None:
    subject = _subject()
    await _serve(broker, subject)
    client = RpcClient(nats_client, timeout_s=5.0)
    token = REQUEST_ID.set("req-42")
    try:
        reply = await client.ask(subject, GetThing(name="abc"), ThingReply)
    finally:
        REQUEST_ID.reset(token)
    assert (reply.size, reply.request_id) == (3, "req-42")
    for name, status, code in [
        ("ghost", 404, "thing_not_found"),
        ("db", 503, "unavailable"),
        ("bug", 500, "internal"),
    ]:
        with pytest.raises(RemoteError) as caught:
            await client.ask(subject, GetThing(name=name), ThingReply)
        assert (caught.value.status, caught.value.code) == (status, code)
    for raw, status in [(b"{nope", 400), (b'{"name": "far too long"}', 422), (b"{}", 422)]:
        msg = await nats_client.request(subject, raw, timeout=5)
        error = ThingReply.model_validate_json(msg.data).error
        assert error is not None
        assert error.status == status
        if status == 422:
            assert "name" in error.message


async def test_a_late_owner_is_still_asked(broker: NatsBroker, nats_client: Client) -> None:
    subject = _subject()

    async def start_late() -> None:
        await asyncio.sleep(0.3)
        await _serve(broker, subject)

    late = asyncio.create_task(start_late())
    reply = await RpcClient(nats_client, timeout_s=10.0).ask(
        subject, GetThing(name="ab"), ThingReply
    )
    await late
    assert reply.size == 2


async def test_no_owner_is_unavailable_within_the_budget(nats_client: Client) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(OwnerUnavailable) as caught:
        await RpcClient(nats_client, timeout_s=0.5).ask(_subject(), GetThing(name="a"), ThingReply)
    assert caught.value.status == 503
    assert loop.time() - started < 5.0


async def test_a_member_that_dies_holding_a_read_does_not_hang_the_asker(
    nats_client: Client,
) -> None:
    """The first member takes the request and dies; the retry reaches the live one."""
    subject = _subject()
    taken: list[bytes] = []

    async def live(msg: Msg) -> None:
        await msg.respond(ThingReply(ok=True, size=7).model_dump_json().encode())

    async def dying(msg: Msg) -> None:
        taken.append(msg.data)
        await first.unsubscribe()
        await nats_client.subscribe(subject, queue="test-rpc", cb=live)

    first = await nats_client.subscribe(subject, queue="test-rpc", cb=dying)
    await nats_client.flush()
    reply = await RpcClient(nats_client, timeout_s=4.0).ask(subject, GetThing(name="a"), ThingReply)
    assert reply.size == 7
    assert len(taken) == 1


async def test_a_change_is_not_sent_twice(nats_client: Client) -> None:
    subject = _subject()
    taken: list[bytes] = []

    async def deaf(msg: Msg) -> None:
        taken.append(msg.data)

    await nats_client.subscribe(subject, queue="test-rpc", cb=deaf)
    await nats_client.flush()
    with pytest.raises(OwnerTimeout):
        await RpcClient(nats_client, timeout_s=0.6).ask(
            subject, GetThing(name="a"), ThingReply, idempotent=False
        )
    await asyncio.sleep(0.2)
    assert len(taken) == 1


async def test_a_reply_of_another_shape_is_a_bad_reply(nats_client: Client) -> None:
    subject = _subject()

    async def odd(msg: Msg) -> None:
        await msg.respond(b'{"status": "fine"}')

    await nats_client.subscribe(subject, cb=odd)
    await nats_client.flush()
    with pytest.raises(BadReply) as caught:
        await RpcClient(nats_client, timeout_s=2.0).ask(subject, GetThing(name="a"), ThingReply)
    assert caught.value.status == 502


async def test_a_read_taken_by_a_dead_member_is_asked_again_after_one_attempt(
    nats_client: Client,
) -> None:
    """``attempt_s`` bounds how long a read waits for a member that will never answer."""
    subject = _subject()

    async def frozen(msg: Msg) -> None:
        await first.unsubscribe()  # it took the request and is gone
        await nats_client.subscribe(subject, queue="test-rpc", cb=live)

    async def live(msg: Msg) -> None:
        await msg.respond(ThingReply(ok=True, size=3).model_dump_json().encode())

    first = await nats_client.subscribe(subject, queue="test-rpc", cb=frozen)
    await nats_client.flush()
    loop = asyncio.get_running_loop()
    started = loop.time()
    client = RpcClient(nats_client, timeout_s=30.0, attempt_s=0.5)
    reply = await client.ask(subject, GetThing(name="abc"), ThingReply)
    assert reply.size == 3
    assert loop.time() - started < 10.0  # asked again after 0.5 s, not after half of 30 s
