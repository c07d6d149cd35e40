"""NATS users and permissions (``voicebus nats-config``), against a real nats-server.

A service user is refused what belongs to others (hearing audio it has no business
with, asking the edge for credentials, answering another service's requests); a
tenant's downstream user reads its own events, live and through its durable consumer,
and never another tenant's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError

from voicebus.contracts import permissions, subjects, telephony
from voicebus.contracts.events import CallEnded
from voicebus.contracts.ids import new_id
from voicebus.contracts.streams import (
    ADVISORIES,
    CALL_OWNERS,
    COMMANDS,
    EVENTS,
    KV_BUCKETS,
    SESSIONS,
    STREAMS,
    WEBHOOK_NONCES,
)
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.nats_accounts import NatsAccounts, tenant_user, write
from voicebus.runtime.consumers import ensure_consumer
from voicebus.runtime.provision import provision, used_by

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def accounts() -> NatsAccounts:
    return NatsAccounts.generate({"acme": [], "globex": ["crm"]})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, accounts: NatsAccounts) -> Iterator[str]:
    data = tmp_path_factory.mktemp("nats-accounts")
    with EmbeddedNats(data_dir=data, extra_config=accounts.server_config()) as embedded:
        yield embedded.url


class Session:
    """One user's connection, with the permission errors the server sent it."""

    def __init__(self) -> None:
        self.nc: Client | None = None
        self.errors: list[str] = []

    async def error(self, exc: Exception) -> None:
        self.errors.append(str(exc))

    async def violation(self, timeout: float = 5.0) -> str:
        async with asyncio.timeout(timeout):
            while not any("permissions violation" in e.lower() for e in self.errors):
                await asyncio.sleep(0.02)
        return next(e for e in self.errors if "permissions violation" in e.lower())


@pytest.fixture
async def login(server: str, accounts: NatsAccounts) -> AsyncIterator[object]:
    opened: list[Client] = []

    async def connect(user: str, inbox: str | None = None) -> tuple[Client, Session]:
        session = Session()
        prefix = inbox or (
            permissions.inbox_prefix(user) if user in permissions.SERVICES else "_INBOX"
        )
        nc = await nats.connect(
            accounts.url_for(user, server),
            error_cb=session.error,
            inbox_prefix=prefix,
            allow_reconnect=False,
        )
        session.nc = nc
        opened.append(nc)
        return nc, session

    yield connect
    for nc in opened:
        await nc.close()


def test_the_generated_files_hold_every_user_and_stay_private(
    tmp_path: Path, accounts: NatsAccounts
) -> None:
    conf, env = write(accounts, tmp_path / "nats")
    config = json.loads("{" + conf.read_text() + "}")
    users = {u["user"]: u for u in config["accounts"]["VOICEBUS"]["users"]}
    assert set(users) == {*permissions.SERVICES, "operator", "tenant-acme", "tenant-globex"}
    audio_in = subjects.audio_in("c1")
    assert "vb.audio.*.in" in users["media"]["permissions"]["subscribe"]["allow"]
    assert "vb.audio.*.out" in users["media"]["permissions"]["subscribe"]["allow"]
    assert not any(
        a in ("vb.audio.*.in", "vb.>", ">")
        for a in users["audit"]["permissions"]["subscribe"]["allow"]
    ), audio_in
    # A masked keypad's real keys: from the gateway to the orchestrator, nobody else.
    assert subjects.KEYS_ALL in users["gateway"]["permissions"]["publish"]["allow"]
    assert subjects.KEYS_ALL in users["orchestrator"]["permissions"]["subscribe"]["allow"]
    for service in ("audit", "edge", "media", "recorder", "campaigns"):
        assert subjects.KEYS_ALL not in users[service]["permissions"]["subscribe"]["allow"]
    for path in (conf, env):
        assert path.stat().st_mode & 0o077 == 0, path
    assert f"VB_NATS_PASSWORD_TENANT_ACME={accounts.passwords['tenant-acme']}" in env.read_text()


async def test_a_service_is_refused_what_belongs_to_others(login: object) -> None:
    connect = login  # type: ignore[assignment]
    audit, audit_session = await connect("audit")  # type: ignore[operator]
    await audit.subscribe(subjects.AUDIO_IN_ALL)
    assert "vb.audio.*.in" in await audit_session.violation()
    recorder, recorder_session = await connect("recorder")  # type: ignore[operator]
    await recorder.subscribe(subjects.keys("c1"))  # a masked keypad's real keys
    assert "vb.keys.c1" in await recorder_session.violation()

    campaigns, campaigns_session = await connect("campaigns")  # type: ignore[operator]
    await campaigns.publish(telephony.ACCOUNTS_GET, b"{}")
    assert telephony.ACCOUNTS_GET in await campaigns_session.violation()

    # Answering another service's requests: the gateway does not serve the edge's RPCs.
    gateway, gateway_session = await connect("gateway")  # type: ignore[operator]
    await gateway.subscribe(telephony.ACCOUNTS_GET)
    assert telephony.ACCOUNTS_GET in await gateway_session.violation()

    # Replies go to the asker's own inbox: nobody else may listen there.
    spy, spy_session = await connect("campaigns", inbox="_INBOX_spy")  # type: ignore[operator]
    await spy.subscribe(f"{permissions.inbox_prefix('gateway')}.>")
    assert "_inbox_gateway" in await spy_session.violation()  # the client lower-cases it


async def test_a_service_can_do_its_job(login: object) -> None:
    """The allow-lists are not a blanket refusal: the gateway asks the edge, which answers."""
    connect = login  # type: ignore[assignment]
    edge, edge_session = await connect("edge")  # type: ignore[operator]

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b'{"ok": true}')

    await edge.subscribe(telephony.ACCOUNTS_GET, cb=answer)
    await edge.flush()
    gateway, gateway_session = await connect("gateway")  # type: ignore[operator]
    reply = await gateway.request(telephony.ACCOUNTS_GET, b"{}", timeout=5)
    assert reply.data == b'{"ok": true}'
    media, media_session = await connect("media")  # type: ignore[operator]
    heard: list[bytes] = []

    async def hear(msg: nats.aio.msg.Msg) -> None:
        heard.append(msg.data)

    await media.subscribe(subjects.AUDIO_IN_ALL, cb=hear)
    # An operator who took a call over speaks on its out audio; media transcribes it.
    await media.subscribe(subjects.audio_out("c1"), cb=hear)
    await media.flush()
    await gateway.publish(subjects.audio_in("c1"), b"pcm")
    await gateway.flush()
    await edge.publish(subjects.audio_out("c1"), b"mic")
    await edge.flush()
    # A bound for a frame that never comes, not a latency budget: a loaded machine is slow.
    async with asyncio.timeout(30):
        while len(heard) < 2:
            await asyncio.sleep(0.02)
    assert sorted(heard) == [b"mic", b"pcm"]
    assert edge_session.errors == gateway_session.errors == media_session.errors == []


async def test_a_tenant_reads_its_own_events_and_never_another_tenants(
    login: object, server: str, accounts: NatsAccounts
) -> None:
    connect = login  # type: ignore[assignment]
    operator, _ = await connect("operator")  # type: ignore[operator]
    await provision(operator.jetstream())
    acme_call, globex_call = new_id(), new_id()
    for tenant, call in (("acme", acme_call), ("globex", globex_call)):
        event = CallEnded(tenant_id=tenant, call_id=call, source="test/1",
                          data={"reason": "caller_hangup", "duration_s": 1.0})  # type: ignore[arg-type]  # fmt: skip
        await operator.jetstream().publish(event.subject, event.to_bytes())

    acme, acme_session = await connect(  # type: ignore[operator]
        tenant_user("acme"), inbox=permissions.tenant_inbox_prefix("acme")
    )
    # Live: its own subjects only.
    await acme.subscribe(subjects.evt_filter("globex"))
    assert "vb.evt.globex" in await acme_session.violation()
    acme_session.errors.clear()

    # Durable: a consumer named as granted, filtered inside its tenant.
    js = acme.jetstream()
    mine = permissions.tenant_consumer("acme")
    sub = await js.pull_subscribe(
        subjects.evt_filter("acme"), durable=mine, stream=EVENTS.name,
        config=ConsumerConfig(name=mine),
    )  # fmt: skip
    msgs = await sub.fetch(10, timeout=5)
    assert [m.subject.split(".")[3] for m in msgs] == [acme_call]
    for m in msgs:
        await m.ack()

    # Another tenant's filter, or another tenant's consumer name, is refused.
    with pytest.raises(Exception) as refused:  # noqa: PT011 - timeout or permission error
        await js.add_consumer(EVENTS.name, ConsumerConfig(
            name=mine, durable_name=mine, filter_subject=subjects.evt_filter("globex")),
            timeout=2)  # fmt: skip
    assert refused.value is not None
    await acme_session.violation()
    acme_session.errors.clear()
    theirs = permissions.tenant_consumer("globex", "crm")
    globex_pull = await js.pull_subscribe_bind(theirs, EVENTS.name)
    with pytest.raises(nats.errors.TimeoutError):  # the pull request was dropped
        await globex_pull.fetch(1, timeout=2)
    assert theirs in await acme_session.violation()


# -- JetStream: each service uses only its own streams, consumers and KV buckets ------------

_API_TIMEOUT_S = 1.0  # a refused API request is never answered: the client times out

_SAMPLE = {
    # stream: (a durable's filter, a subject to store a message under)
    EVENTS.name: (subjects.evt_filter(), "vb.evt.acme.c-js.call.ended"),
    COMMANDS.name: (subjects.cmd("call", "originate"), subjects.cmd("call", "originate")),
    ADVISORIES.name: (
        subjects.max_deliveries_advisory(COMMANDS.name, "gateway-originate"),
        subjects.max_deliveries_advisory(COMMANDS.name, "gateway-originate"),
    ),
}


def test_no_service_holds_the_whole_jetstream_api_and_every_stream_has_a_provisioner() -> None:
    for service in permissions.SERVICES:
        allowed = permissions.service_grant(service).publish
        assert not {"$JS.API.>", "$JS.>", "$KV.>", "$JS.ACK.>", ">"} & set(allowed), service
        assert not [a for a in allowed if ".DELETE." in a and ".MSG.DELETE." not in a], service
        assert not [a for a in allowed if a.startswith("$JS.API.INFO")], service
        durables = [d for _, d in permissions.JETSTREAM[service].durables]
        assert all(d.startswith(f"{service}-") for d in durables), durables
    # Whichever services run, each stream and bucket they use is made by one that uses it.
    used = [permissions.JETSTREAM[s] for s in permissions.SERVICES]
    assert {s.name for s in STREAMS} == {n for u in used for n in u.streams}
    assert {b.bucket for b in KV_BUCKETS} == {n for u in used for n in u.buckets}
    for use in used:
        consumed = {s for s, _ in use.durables} | set(use.ordered) | set(use.reads)
        assert consumed <= set(use.streams), use
        assert set(use.watches) <= set(use.buckets), use


@pytest.fixture
async def provisioned(server: str, accounts: NatsAccounts) -> dict[str, int]:
    """Every stream and bucket, two new messages per stream; the first's sequence."""
    nc = await nats.connect(accounts.url_for("operator", server))
    try:
        js = nc.jetstream()
        await provision(js)
        seqs: dict[str, int] = {}
        for stream, (_, subject) in _SAMPLE.items():
            seqs[stream] = (await js.publish(subject, b"{}", stream=stream)).seq
            await js.publish(subject, b"{}", stream=stream)  # left for a consumer to fetch
        return seqs
    finally:
        await nc.close()


async def test_a_service_is_refused_other_services_streams_consumers_and_buckets(
    login: object, provisioned: dict[str, int]
) -> None:
    connect = login  # type: ignore[assignment]
    gateway, gateway_session = await connect("gateway")  # type: ignore[operator]
    js = gateway.jetstream(timeout=_API_TIMEOUT_S)
    # The orchestrator's conversation state: neither opened, read nor written.
    with pytest.raises(nats.errors.TimeoutError):
        await js.key_value(SESSIONS.bucket)
    assert f"$js.api.stream.info.kv_{SESSIONS.bucket}" in await gateway_session.violation()
    gateway_session.errors.clear()
    await gateway.publish(f"$KV.{SESSIONS.bucket}.c1", b"forged")
    assert f"$kv.{SESSIONS.bucket}.c1" in await gateway_session.violation()
    gateway_session.errors.clear()
    # A consumer on VB_EVENTS it has no business reading (audit's name, or a new one).
    for name in ("audit-call-events", "gateway-spy"):
        with pytest.raises(nats.errors.TimeoutError):
            await js.add_consumer(
                EVENTS.name,
                ConsumerConfig(durable_name=name, filter_subject=subjects.evt_filter()),
            )
        assert f"vb_events.{name}" in await gateway_session.violation()
        gateway_session.errors.clear()
    with pytest.raises(nats.errors.TimeoutError):  # nor an ephemeral one
        await js.subscribe(subjects.evt_filter(), stream=EVENTS.name, ordered_consumer=True)
    assert "$js.api.consumer.create.vb_events" in await gateway_session.violation()

    # The audit service never touches commands or the call owners' leases.
    audit, audit_session = await connect("audit")  # type: ignore[operator]
    audit_js = audit.jetstream(timeout=_API_TIMEOUT_S)
    with pytest.raises(nats.errors.TimeoutError):
        await audit_js.add_consumer(
            COMMANDS.name,
            ConsumerConfig(durable_name="audit-commands", filter_subject=subjects.COMMANDS_ALL),
        )
    assert "vb_commands" in await audit_session.violation()
    audit_session.errors.clear()
    with pytest.raises(nats.errors.TimeoutError):
        await audit_js.get_msg(COMMANDS.name, provisioned[COMMANDS.name])
    assert "$js.api.stream.msg.get.vb_commands" in await audit_session.violation()
    audit_session.errors.clear()
    with pytest.raises(nats.errors.TimeoutError):
        await audit_js.key_value(CALL_OWNERS.bucket)
    assert f"kv_{CALL_OWNERS.bucket}" in await audit_session.violation()

    # Media reads the leases but never the gateway's webhook nonces or stream claims.
    media, media_session = await connect("media")  # type: ignore[operator]
    with pytest.raises(nats.errors.TimeoutError):
        await media.jetstream(timeout=_API_TIMEOUT_S).key_value(WEBHOOK_NONCES.bucket)
    assert f"kv_{WEBHOOK_NONCES.bucket}" in await media_session.violation()


@pytest.mark.parametrize("service", permissions.SERVICES)
async def test_no_service_deletes_or_purges_a_stream_it_does_not_own(
    login: object, provisioned: dict[str, int], service: str
) -> None:
    connect = login  # type: ignore[assignment]
    nc, session = await connect(service)  # type: ignore[operator]
    js = nc.jetstream(timeout=_API_TIMEOUT_S)
    for stream in (EVENTS.name, f"KV_{CALL_OWNERS.bucket}"):
        with pytest.raises(nats.errors.TimeoutError):
            await js.delete_stream(stream)
        assert f"$js.api.stream.delete.{stream.lower()}" in await session.violation()
        session.errors.clear()
    if EVENTS.name not in permissions.JETSTREAM[service].purges:
        with pytest.raises(nats.errors.TimeoutError):
            await js.purge_stream(EVENTS.name)
        assert "$js.api.stream.purge.vb_events" in await session.violation()
    operator, _ = await connect("operator")  # type: ignore[operator]
    for stream in (EVENTS.name, f"KV_{CALL_OWNERS.bucket}"):
        assert (await operator.jetstream().stream_info(stream)).config.name == stream


@pytest.mark.parametrize("service", permissions.SERVICES)
async def test_each_service_can_use_its_own_streams_consumers_and_buckets(
    login: object, provisioned: dict[str, int], service: str
) -> None:
    """Everything :data:`permissions.JETSTREAM` lists, done the way nats-py does it."""
    connect = login  # type: ignore[assignment]
    nc, session = await connect(service)  # type: ignore[operator]
    js = nc.jetstream(timeout=_API_TIMEOUT_S)
    use = permissions.JETSTREAM[service]
    streams, buckets = used_by(service, STREAMS, KV_BUCKETS)
    assert {s.name for s in streams} == set(use.streams)
    await provision(js, streams, buckets)  # all there already: info, then nothing to change

    for stream in use.reads:
        with contextlib.suppress(NotFoundError):  # an answer, not a refusal
            await js.get_last_msg(stream, _SAMPLE[stream][1])
        await js.get_msg(stream, provisioned[stream])
    for stream in use.deletes:
        assert await js.delete_msg(stream, provisioned[stream])
    for stream in use.purges:
        await js.purge_stream(stream, subject=subjects.evt_filter("acme", "c-purged"))

    for stream, durable in use.durables:
        filter_subject = _SAMPLE[stream][0]
        # FastStream's way (info, then create by name and filter), then the kit's update.
        sub = await js.pull_subscribe(filter_subject, durable=durable, stream=stream)
        await ensure_consumer(
            js, stream, ConsumerConfig(durable_name=durable, filter_subject=filter_subject)
        )
        msgs = await sub.fetch(1, timeout=10)
        assert len(msgs) == 1, (stream, durable)
        await msgs[0].ack_sync()

    for stream in use.ordered:
        ordered = await js.subscribe(
            subjects.evt_filter("acme"), stream=stream, ordered_consumer=True
        )
        first = await ordered.next_msg(timeout=10)
        assert first.subject.startswith("vb.evt.acme.")
        await ordered.unsubscribe()

    for bucket in use.buckets:
        kv = await js.key_value(bucket)
        revision = await kv.put(f"k{service}", b"1")
        assert (await kv.get(f"k{service}")).revision == revision
    for bucket in use.watches:
        kv = await js.key_value(bucket)
        assert f"k{service}" in await kv.keys()
        await kv.delete(f"k{service}")

    await nc.flush()
    assert session.errors == []
