"""Failed JetStream deliveries on a real nats-server: backoff, dead letters, no silent drop."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from voicebus.contracts import deadletters as dl
from voicebus.contracts import streams, subjects
from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import CallEnded, CallEndedData
from voicebus.contracts.ids import new_id
from voicebus.runtime.consumers import command_subscriber, event_subscriber
from voicebus.runtime.publish import publish_event, send_command
from voicebus.runtime.service import Service
from voicebus.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def server_url(embedded_nats_factory: Callable[..., Any]) -> str:
    return str(embedded_nats_factory().url)


@pytest.fixture
async def client(server_url: str) -> AsyncIterator[Client]:
    nc = await nats.connect(server_url)
    yield nc
    await nc.drain()


def _service(settings_cls: type[ServiceSettings], url: str) -> Service:
    return Service(settings_cls(nats_url=url, instance_id="demo-dl"))


def _ended(call_id: str) -> CallEnded:
    return CallEnded(tenant_id="acme", call_id=call_id, source="test/1",
                     data=CallEndedData(reason="busy"))  # fmt: skip


async def _dead_letters(nc: Client, want: int, timeout: float = 20.0) -> list[Any]:
    js = nc.jetstream()
    async with asyncio.timeout(timeout):
        while True:
            info = await js.stream_info(streams.DEAD_LETTERS.name)
            if info.state.messages >= want:
                break
            await asyncio.sleep(0.1)
    return [await js.get_msg(streams.DEAD_LETTERS.name, seq) for seq in range(1, want + 1)]


def _metric(service: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "voicebus_dead_letters_total", {"service": service, "reason": reason}
    )
    return value or 0.0


async def test_an_outage_is_retried_with_growing_delays_and_nothing_is_dropped(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings], server_url: str,
    client: Client,
) -> None:  # fmt: skip
    service = _service(settings_cls, server_url)
    seen: list[float] = []
    handled = asyncio.Event()

    @event_subscriber(service.broker, durable="demo-outage", event_type="call.ended")
    async def on_ended(event: CallEnded) -> None:
        seen.append(time.monotonic())
        if len(seen) < 5:  # the database is down for four deliveries
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError())
        handled.set()

    async with service.lifespan():
        info = await service.js.consumer_info(streams.EVENTS.name, "demo-outage")
        assert info.config.max_deliver == -1
        await publish_event(service.broker, _ended(new_id()))
        async with asyncio.timeout(30):
            await handled.wait()
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    # Equal jitter: retry n waits at least half of 0.5 s * 2**(n-1).
    for n, gap in enumerate(gaps, start=1):
        assert gap >= 0.25 * 2 ** (n - 1) * 0.9, gaps
    assert len(seen) == 5


async def test_a_message_at_fault_becomes_a_dead_letter_with_its_origin(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings], server_url: str,
    client: Client,
) -> None:  # fmt: skip
    service = _service(settings_cls, server_url)
    handled: list[str] = []

    @event_subscriber(service.broker, durable="demo-poison", event_type="call.ended")
    async def on_ended(event: CallEnded) -> None:
        if event.data.detail == "refused":
            # What asyncpg raises for a NUL in jsonb: the data, not the database, is at fault.
            raise asyncpg.exceptions.UntranslatableCharacterError("unsupported Unicode escape")
        handled.append(event.call_id)

    before_invalid = _metric("demo", "invalid_message")
    before_refused = _metric("demo", "storage_rejected")
    async with service.lifespan():
        js = client.jetstream()
        bad_subject = subjects.evt("acme", "c-bad", "call.ended")
        garbage = b'{"type": "call.ended.v1", "tenant_id": "acme", "call_id": "c-bad"}'
        await js.publish(bad_subject, garbage, headers={"Nats-Msg-Id": "m-1", "X-Trace": "t1"})
        refused = CallEnded(tenant_id="acme", call_id="c-ref", source="test/1",
                            data=CallEndedData(reason="busy", detail="refused"))  # fmt: skip
        await publish_event(service.broker, refused)
        good = _ended(new_id())
        await publish_event(service.broker, good)
        letters = await _dead_letters(client, 2)
        async with asyncio.timeout(10):
            while good.call_id not in handled:
                await asyncio.sleep(0.05)
    by_reason = {m.headers[dl.REASON]: m for m in letters if m.headers}
    invalid = by_reason["invalid_message"]
    assert invalid.subject == "vb.dlq.demo.invalid_message"
    assert invalid.data == garbage
    assert invalid.headers is not None
    assert invalid.headers[dl.SUBJECT] == bad_subject
    assert invalid.headers[dl.MSG_ID] == "m-1"
    assert invalid.headers["X-Trace"] == "t1"
    assert invalid.headers[dl.STREAM] == streams.EVENTS.name
    assert invalid.headers[dl.CONSUMER] == "demo-poison"
    assert "data" in invalid.headers[dl.DETAIL]  # names the missing field, not a value
    stored = by_reason["storage_rejected"]
    assert stored.data == refused.to_bytes()
    assert "22P05" in (stored.headers or {})[dl.DETAIL]
    assert _metric("demo", "invalid_message") == before_invalid + 1
    assert _metric("demo", "storage_rejected") == before_refused + 1
    # Both were acknowledged: nothing is pending or redelivered.
    info = await client.jetstream().consumer_info(streams.EVENTS.name, "demo-poison")
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


async def test_a_command_out_of_deliveries_reaches_the_dead_letters_by_the_advisory(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings], server_url: str,
    client: Client,
) -> None:  # fmt: skip
    service = _service(settings_cls, server_url)
    tries: list[int] = []

    @command_subscriber(
        service.broker, durable="demo-originate", domain="call", verb="originate", max_deliver=2
    )
    async def originate(command: OriginateCall) -> None:
        tries.append(1)
        raise RuntimeError("a defect: never handled")

    command = OriginateCall(
        tenant_id="acme", call_id=new_id(), source="test/1",
        data=OriginateCallData(agent_id="demo", to_number="+14155550199"),
    )  # fmt: skip
    async with service.lifespan():
        await send_command(service.broker, command)
        letters = await _dead_letters(client, 1, timeout=30)
        js = client.jetstream()
        async with asyncio.timeout(10):
            while (await js.stream_info(streams.COMMANDS.name)).state.messages:
                await asyncio.sleep(0.1)
    letter = letters[0]
    assert letter.subject == "vb.dlq.demo.max_deliveries"
    assert letter.data == command.to_bytes()
    assert letter.headers is not None
    assert letter.headers[dl.SUBJECT] == "vb.cmd.call.originate"
    assert letter.headers[dl.MSG_ID] == command.id
    assert letter.headers[dl.DELIVERIES] == "2"
    assert len(tries) == 2


async def test_a_relay_that_was_down_still_moves_the_command(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings], server_url: str,
    client: Client,
) -> None:  # fmt: skip
    """The advisory is stored while no instance of the owner runs; the next start relays it."""
    service = _service(settings_cls, server_url)

    @command_subscriber(
        service.broker, durable="demo-later", domain="call", verb="originate", max_deliver=1
    )
    async def originate(command: OriginateCall) -> None:
        raise RuntimeError("a defect")

    async with service.lifespan():
        pass  # creates the streams and the consumers
    js = client.jetstream()
    command = OriginateCall(
        tenant_id="acme", call_id=new_id(), source="test/1",
        data=OriginateCallData(agent_id="demo", to_number="+14155550199"),
    )  # fmt: skip
    await js.publish(command.subject, command.to_bytes(), headers={"Nats-Msg-Id": command.id})
    # Someone else (an older instance, say) exhausts it while no relay runs.
    sub = await js.pull_subscribe_bind("demo-later", stream=streams.COMMANDS.name)
    (msg,) = await sub.fetch(1, timeout=5)
    await msg.nak()
    # JetStream notices the exhausted delivery when it would deliver again (a pull waits).
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=1)
    await sub.unsubscribe()
    async with asyncio.timeout(10):
        while not (await js.stream_info(streams.ADVISORIES.name)).state.messages:
            await asyncio.sleep(0.1)
    again = _service(settings_cls, server_url)
    command_subscriber(again.broker, durable="demo-later", domain="call", verb="originate",
                       max_deliver=1)(originate)  # fmt: skip
    async with again.lifespan():
        letters = await _dead_letters(client, 1, timeout=20)
    assert letters[0].data == command.to_bytes()


async def test_an_old_consumer_with_a_delivery_limit_is_updated_at_start(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings], server_url: str,
    client: Client,
) -> None:  # fmt: skip
    service = _service(settings_cls, server_url)

    @event_subscriber(service.broker, durable="demo-old", event_type="call.ended")
    async def on_ended(event: CallEnded) -> None:
        return None

    async with service.lifespan():
        pass
    js = client.jetstream()
    old = ConsumerConfig(
        durable_name="demo-old", ack_policy=AckPolicy.EXPLICIT, max_deliver=10,
        deliver_policy=DeliverPolicy.NEW,
        filter_subject=subjects.evt_filter(event_type="call.ended"),
    )  # fmt: skip
    await js.add_consumer(streams.EVENTS.name, config=old)
    assert (await js.consumer_info(streams.EVENTS.name, "demo-old")).config.max_deliver == 10
    async with service.lifespan():
        info = await js.consumer_info(streams.EVENTS.name, "demo-old")
    assert info.config.max_deliver == -1
