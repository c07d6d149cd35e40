"""NATS users and permissions (``voicebus nats-config``), against a real nats-server.

A service user is refused what belongs to others (hearing audio it has no business
with, asking the edge for credentials, answering another service's requests); a
tenant's downstream user reads its own events, live and through its durable consumer,
and never another tenant's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig

from voicebus.contracts import permissions, subjects, telephony
from voicebus.contracts.events import CallEnded
from voicebus.contracts.ids import new_id
from voicebus.contracts.streams import EVENTS
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.nats_accounts import NatsAccounts, tenant_user, write
from voicebus.runtime.provision import provision

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
    await media.flush()
    await gateway.publish(subjects.audio_in("c1"), b"pcm")
    await gateway.flush()
    # A bound for a frame that never comes, not a latency budget: a loaded machine is slow.
    async with asyncio.timeout(30):
        while not heard:
            await asyncio.sleep(0.02)
    assert heard == [b"pcm"]
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
