"""Resilience harness: real service processes on a private NATS and a fresh database.

Each test module gets its own embedded nats-server (JetStream on disk, fsync on
every write, so it can be restarted mid-call) and its own PostgreSQL database.
Services run exactly as deployed (``python -m voicebus.<service>``) with short
call leases, each logged in as its own NATS user (the tests' own checks as the
operator), and can be killed with SIGKILL, stopped, or started again. A module
whose services did anything their users may not (the server logs a permission
violation: e.g. a takeover path reading a bucket it was not granted) fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from voicebus.contracts import subjects
from voicebus.contracts.events import CallEvent, parse_event
from voicebus.contracts.permissions import OPERATOR
from voicebus.contracts.streams import CALL_OWNERS, owner_key
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.embedded_postgres import create_database, drop_database
from voicebus.devkit.embedded_postgres import random_database_name as random_name
from voicebus.devkit.nats_accounts import NatsAccounts
from voicebus.devkit.ports import free_port
from voicebus.devkit.schemas import migrate_all
from voicebus.devkit.stack import service_env

LEASE_TTL_S: Final = 3.0
"""Call-lease TTL of every process: a dead owner's calls are taken over within ~2 TTLs."""
REPO: Final = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG: Final = 1


def _die_with_parent() -> None:
    """In the child before exec: the kernel SIGKILLs it if the test process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Proc:
    """One service process."""

    service: str
    instance: str
    port: int
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL of its HTTP port."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The end of its log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Cluster:
    """Service processes on one NATS and one database.

    Args:
        data_dir: logs and recordings.
        nats_server: the private NATS.
        database_url: a database of this cluster only.
        accounts: the NATS users of ``nats_server``.
        env: extra environment for every process (e.g. a stand-in carrier's URL).
    """

    def __init__(
        self,
        data_dir: Path,
        nats_server: EmbeddedNats,
        database_url: str,
        accounts: NatsAccounts,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.nats = nats_server
        self.accounts = accounts
        self.database_url = database_url
        self.env = dict(env or {})
        self.procs: list[Proc] = []
        self._serial = 0

    def running(self, service: str) -> list[Proc]:
        """Live processes of ``service``."""
        return [p for p in self.procs if p.service == service and p.alive]

    async def start(self, service: str, instance: str, *, timeout: float = 120.0) -> Proc:
        """Start one instance and wait until its ``/readyz`` answers 200."""
        port = free_port()
        extra = {
            "VB_CALL_LEASE_TTL_S": str(LEASE_TTL_S),
            f"VB_{service.upper()}_INSTANCE_ID": instance,
            "VB_ORCHESTRATOR_AGENTS_DIR": str(REPO / "agents"),
            "VB_RECORDER_DIR": str(self.data_dir / "recordings"),
            "VB_LOG_FORMAT": "console",
            "HF_HUB_OFFLINE": "1",
            **self.accounts.service_env(service),
            **self.env,
        }
        env = service_env(service, port, self.nats.url, self.database_url, extra)
        proc = Proc(service, instance, port, self.data_dir / f"{instance}.log", env=env)
        self.procs.append(proc)
        self._spawn(proc)
        await self.wait_ready(proc, timeout)
        return proc

    async def ensure(self, counts: dict[str, int]) -> None:
        """Start instances until each service has at least its count running (in parallel)."""
        starts = []
        for service, count in counts.items():
            for _ in range(count - len(self.running(service))):
                self._serial += 1
                starts.append(self.start(service, f"{service}-{self._serial}"))
        await asyncio.gather(*starts)

    def _spawn(self, proc: Proc) -> None:
        with proc.log_path.open("ab") as log:
            proc.popen = subprocess.Popen(
                [sys.executable, "-m", f"voicebus.{proc.service}"],
                env=proc.env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    async def wait_ready(self, proc: Proc, timeout: float = 60.0) -> None:
        """Wait until ``proc`` answers ``/readyz`` with 200."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                if not proc.alive:
                    raise AssertionError(f"{proc.instance} exited:\n{proc.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{proc.url}/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{proc.instance} not ready:\n{proc.log_tail()}")
                await asyncio.sleep(0.2)

    def kill(self, proc: Proc) -> None:
        """SIGKILL: no shutdown hook runs, its leases simply stop being renewed."""
        assert proc.popen is not None
        proc.popen.kill()
        proc.popen.wait()

    async def stop(self, proc: Proc, timeout: float = 20.0) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``)."""
        popen = proc.popen
        if popen is None or popen.poll() is not None:
            return
        popen.terminate()
        try:
            await asyncio.to_thread(popen.wait, timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()

    async def close(self) -> None:
        """Stop every process (terminate together, then wait)."""
        for proc in self.procs:
            if proc.alive and proc.popen is not None:
                proc.popen.terminate()
        await asyncio.gather(*(self.stop(p) for p in self.procs))

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        """A NATS client for the test's own checks (reconnects across a restart)."""
        nc = await nats.connect(
            self.accounts.url_for(OPERATOR, self.nats.url),
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
        )
        try:
            yield nc
        finally:
            await nc.close()

    async def owner(self, nc: Client, service: str, call_id: str) -> str | None:
        """The instance holding ``service``'s lease on the call, or None."""
        kv = await nc.jetstream().key_value(CALL_OWNERS.bucket)
        try:
            entry = await kv.get(owner_key(service, call_id))
        except nats.js.errors.KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None

    async def wait_owner(
        self, nc: Client, service: str, call_id: str, *, not_: str | None = None, timeout: float
    ) -> str:
        """Wait until the call's ``service`` lease is held by an instance other than ``not_``."""
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(nats.errors.Error):
                    owner = await self.owner(nc, service, call_id)
                    if owner is not None and owner != not_:
                        return owner
                await asyncio.sleep(0.2)

    def by_instance(self, instance: str) -> Proc:
        """The process with this instance id."""
        return next(p for p in self.procs if p.instance == instance)


async def events_of(nc: Client, call_id: str) -> list[CallEvent]:
    """Every stored event of the call, in stream order."""
    js = nc.jetstream()
    sub = await js.subscribe(
        subjects.evt_filter(call_id=call_id),
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    events: list[CallEvent] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                break
            events.append(parse_event(msg.data))
    finally:
        await sub.unsubscribe()
    return events


async def wait_events(
    nc: Client, call_id: str, done: Any, timeout: float = 30.0
) -> list[CallEvent]:
    """Poll the call's events until ``done(events)`` is true."""
    async with asyncio.timeout(timeout):
        while True:
            events = await events_of(nc, call_id)
            if done(events):
                return events
            await asyncio.sleep(0.3)


@pytest.fixture(scope="module")
def module_accounts() -> NatsAccounts:
    """The NATS users of the module's server: one per service, and the operator."""
    return NatsAccounts.generate()


@pytest.fixture(scope="module")
def module_nats(
    tmp_path_factory: pytest.TempPathFactory, module_accounts: NatsAccounts
) -> Iterator[EmbeddedNats]:
    """A private nats-server for the module; JetStream on disk, fsync on every write."""
    server = EmbeddedNats(
        data_dir=tmp_path_factory.mktemp("nats"),
        sync_always=True,
        extra_config=module_accounts.server_config(),
    )
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
async def module_database(postgres_url: str) -> AsyncIterator[str]:
    """A fresh database for the module, dropped afterwards."""
    name = random_name("vbres_")
    url = await create_database(postgres_url, name)
    try:
        await migrate_all(url)
        yield url
    finally:
        await drop_database(postgres_url, name)


@pytest.fixture(scope="module")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    module_nats: EmbeddedNats,
    module_database: str,
    module_accounts: NatsAccounts,
) -> AsyncIterator[Cluster]:
    """A :class:`Cluster` for the module; every process is stopped afterwards, then the
    module fails if the server logged a permission violation."""
    data_dir = tmp_path_factory.mktemp("cluster")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cluster = Cluster(data_dir, module_nats, module_database, module_accounts)
    try:
        yield cluster
    finally:
        await cluster.close()
    log = module_nats.log_path.read_text(encoding="utf-8", errors="replace")
    assert [line for line in log.splitlines() if "Violation" in line] == []
