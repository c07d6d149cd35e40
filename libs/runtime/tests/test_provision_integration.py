"""Provisioning against a real nats-server: idempotent, concurrent, updating, enforcing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig

from voicebus.contracts.streams import CALL_OWNERS, COMMANDS, EVENTS, SESSIONS, KVSpec
from voicebus.runtime.errors import ProvisioningError
from voicebus.runtime.provision import kv_stream_name, provision, streams_with_caps

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def fresh_nc(embedded_nats_factory: Callable[..., Any]) -> AsyncIterator[Client]:
    """A client on a private server whose JetStream is empty."""
    server = embedded_nats_factory()
    nc = await nats.connect(server.url)
    try:
        yield nc
    finally:
        await nc.drain()


async def test_provision_twice_creates_every_definition(
    fresh_nc: Client, caplog: pytest.LogCaptureFixture
) -> None:
    js = fresh_nc.jetstream()
    await provision(js)
    caplog.set_level(logging.INFO, logger="voicebus.runtime.provision")
    await provision(js)
    # The second run found every definition identical: nothing was updated.
    assert [r.message for r in caplog.records] == ["jetstream provisioned"]

    events = (await js.stream_info(EVENTS.name)).config
    assert events.subjects == list(EVENTS.subjects)
    assert events.retention == RetentionPolicy.LIMITS
    assert events.max_age == pytest.approx(EVENTS.max_age_s)
    assert events.duplicate_window == pytest.approx(EVENTS.duplicate_window_s)
    assert events.max_msg_size == EVENTS.max_msg_bytes
    assert events.storage == StorageType.FILE

    commands = (await js.stream_info(COMMANDS.name)).config
    assert commands.retention == RetentionPolicy.WORK_QUEUE

    for spec in (SESSIONS, CALL_OWNERS):
        status = await (await js.key_value(spec.bucket)).status()
        assert status.ttl == pytest.approx(spec.ttl_s)
        assert status.history == spec.history


async def test_six_services_at_once(embedded_nats_factory: Callable[..., Any]) -> None:
    server = embedded_nats_factory()
    clients = [await nats.connect(server.url) for _ in range(6)]
    try:
        await asyncio.gather(*(provision(nc.jetstream()) for nc in clients))
        names = await clients[0].jetstream().streams_info()
        assert {s.config.name for s in names} >= {
            EVENTS.name,
            COMMANDS.name,
            kv_stream_name(SESSIONS.bucket),
            kv_stream_name(CALL_OWNERS.bucket),
        }
    finally:
        for nc in clients:
            await nc.drain()


async def test_events_dedup_repeated_msg_id(fresh_nc: Client) -> None:
    js = fresh_nc.jetstream()
    await provision(js)
    subject = "vb.evt.acme.c1.call.started"
    headers = {"Nats-Msg-Id": "evt-1"}
    first = await js.publish(subject, b"{}", headers=headers)
    second = await js.publish(subject, b"{}", headers=headers)
    assert not first.duplicate
    assert second.duplicate
    assert second.seq == first.seq
    assert (await js.stream_info(EVENTS.name)).state.messages == 1


async def test_commands_is_a_work_queue(fresh_nc: Client) -> None:
    js = fresh_nc.jetstream()
    await provision(js)
    await js.publish("vb.cmd.call.originate", b"{}", headers={"Nats-Msg-Id": "cmd-1"})
    assert (await js.stream_info(COMMANDS.name)).state.messages == 1
    sub = await js.pull_subscribe("vb.cmd.call.originate", durable="test-owner")
    [msg] = await sub.fetch(1, timeout=2)
    await msg.ack_sync()
    assert (await js.stream_info(COMMANDS.name)).state.messages == 0
    # A second consumer on the same subjects is refused: each command has one owner.
    with pytest.raises(nats.js.errors.BadRequestError):
        await js.pull_subscribe("vb.cmd.call.originate", durable="test-other")


async def test_existing_definitions_are_updated(fresh_nc: Client) -> None:
    js = fresh_nc.jetstream()
    await js.add_stream(StreamConfig(name=EVENTS.name, subjects=["vb.evt.>"], max_age=60))
    await js.create_key_value(KeyValueConfig(bucket=CALL_OWNERS.bucket, ttl=300, history=3))
    await provision(js)
    events = (await js.stream_info(EVENTS.name)).config
    assert events.max_age == pytest.approx(EVENTS.max_age_s)
    assert events.duplicate_window == pytest.approx(EVENTS.duplicate_window_s)
    owners = await (await js.key_value(CALL_OWNERS.bucket)).status()
    assert owners.ttl == pytest.approx(CALL_OWNERS.ttl_s)
    assert owners.history == CALL_OWNERS.history


async def test_kv_ttl_expires_entries(fresh_nc: Client) -> None:
    js = fresh_nc.jetstream()
    # The contract buckets' TTLs are checked above; a 1 s bucket keeps this test short.
    leases = KVSpec(bucket="vb_test_leases", ttl_s=1.0, history=1, description="test")
    await provision(js, streams=(), kv_buckets=(leases,))
    kv = await js.key_value(leases.bucket)
    await kv.put("media.c1", b"media-1")
    assert (await kv.get("media.c1")).value == b"media-1"
    await asyncio.sleep(leases.ttl_s + 1.5)
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await kv.get("media.c1")


async def test_refused_change_is_a_clear_error(fresh_nc: Client) -> None:
    js: JetStreamContext = fresh_nc.jetstream()
    # Subjects overlapping a contract stream cannot coexist with it.
    await js.add_stream(StreamConfig(name="OTHER", subjects=["vb.cmd.>"]))
    with pytest.raises(ProvisioningError, match=COMMANDS.name):
        await provision(js, streams=(COMMANDS,), kv_buckets=())


async def test_the_events_byte_cap_is_applied_and_keeps_the_stream_bounded(
    fresh_nc: Client,
) -> None:
    js = fresh_nc.jetstream()
    await provision(js)  # uncapped first, as an older deployment left it
    assert (await js.stream_info(EVENTS.name)).config.max_bytes in (None, -1)
    cap = 256 * 1024
    await provision(js, streams=streams_with_caps(events_max_bytes=cap))
    info = await js.stream_info(EVENTS.name)
    assert info.config.max_bytes == cap
    payload = b"x" * 4096
    for n in range(200):  # ~800 KiB into a 256 KiB stream
        await js.publish(f"vb.evt.acme.call-{n}.call.initiated.v1", payload)
    state = (await js.stream_info(EVENTS.name)).state
    assert state.bytes <= cap
    assert state.first_seq > 1  # the oldest were dropped, the newest kept
    assert state.last_seq == 200
