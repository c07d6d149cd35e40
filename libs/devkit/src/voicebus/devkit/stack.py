"""Run the whole platform on one machine: ``voicebus dev``.

Starts embedded NATS and PostgreSQL unless URLs are given, runs each service
as its own process (``python -m voicebus.<service>``, exactly as deployed),
waits for every ``/readyz``, streams logs with a service prefix, and stops
everything on Ctrl-C or SIGTERM. Children run in their own sessions and are
told by the kernel to exit if this process dies (``PR_SET_PDEATHSIG``), so no
process outlives the stack, even after ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

import httpx

from voicebus.contracts.permissions import OPERATOR
from voicebus.devkit.business import BusinessServer
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.embedded_postgres import EmbeddedPostgres, create_database, database_url
from voicebus.devkit.nats_accounts import NatsAccounts
from voicebus.devkit.ports import free_port
from voicebus.devkit.schemas import migrate_all
from voicebus.engines.base import EngineError
from voicebus.engines.llm.llama_server import LlamaServer
from voicebus.engines.llm.local_model import prepare_model
from voicebus.runtime.migrations.spec import MigrationError

SERVICES: Final = ("gateway", "media", "orchestrator", "campaigns", "recorder", "audit", "edge")
DEFAULT_PORTS: Final = {name: 8080 + i for i, name in enumerate(SERVICES)}
"""The documented ports: 8080 gateway, 8081 media, ... 8085 audit, 8086 edge."""
NO_DATABASE: Final = frozenset({"gateway"})
"""Services that must not reach PostgreSQL: they are not given ``VB_DATABASE_URL``."""
DEFAULT_MEDIA_WS_PORT: Final = 8090
"""The gateway's media WebSocket port under ``voicebus dev`` (when free)."""
DEV_DATABASE: Final = "voicebus"
STATE_FILE: Final = "stack.json"
_PR_SET_PDEATHSIG: Final = 1
_COLORS: Final = ("cyan", "green", "magenta", "yellow", "blue", "red", "bright_cyan")


class StackError(RuntimeError):
    """The dev stack could not start."""


@dataclass
class ServiceProcess:
    """One running service."""

    name: str
    port: int
    ws_port: int | None = None
    """The gateway's media WebSocket port (other services have none)."""
    process: asyncio.subprocess.Process | None = None
    tail: list[str] = field(default_factory=list)
    ready_after_s: float | None = None

    @property
    def url(self) -> str:
        """Base URL of the service's HTTP port."""
        return f"http://127.0.0.1:{self.port}"


def port_or_free(preferred: int) -> int:
    """``preferred`` if nothing listens there on loopback, else a free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def service_env(
    name: str,
    port: int,
    nats_url: str,
    database_url: str,
    extra: Mapping[str, str] | None = None,
    *,
    ws_port: int | None = None,
) -> dict[str, str]:
    """Environment of one service process under the dev stack.

    Every service but those in :data:`NO_DATABASE` gets ``VB_DATABASE_URL``.
    The gateway also serves media WebSockets on ``ws_port`` (a free port when None).
    """
    prefix = f"VB_{name.upper()}_"
    env = {**os.environ, **(extra or {})}
    if name in NO_DATABASE:
        env.pop("VB_DATABASE_URL", None)
    else:
        env["VB_DATABASE_URL"] = database_url
    env.update(
        {
            "VB_NATS_URL": nats_url,
            "VB_ENVIRONMENT": env.get("VB_ENVIRONMENT", "development"),
            "VB_LOG_FORMAT": env.get("VB_LOG_FORMAT", "console"),
            f"{prefix}HTTP_HOST": "127.0.0.1",
            f"{prefix}HTTP_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if name == "orchestrator" and Path("agents").is_dir():
        env.setdefault("VB_ORCHESTRATOR_AGENTS_DIR", str(Path("agents").resolve()))
    if name == "orchestrator":
        # The demo's webhook tool calls the business stand-in on loopback.
        env.setdefault("VB_ORCHESTRATOR_TOOLS_ALLOW_LOOPBACK", "true")
    if name == "gateway":
        # Signatures are checked against the public URL: it must be where the gateway runs.
        env.setdefault("VB_GATEWAY_PUBLIC_URL", f"http://127.0.0.1:{port}")
        env["VB_GATEWAY_WS_PORT"] = str(ws_port or free_port())
    return env


class DevStack:
    """Embedded infrastructure plus one process per service.

    Args:
        data_dir: where embedded NATS and PostgreSQL keep their data.
        nats_url: an existing NATS to use instead of the embedded one.
        database_url: an existing PostgreSQL database instead of the embedded one.
        services: which services to run.
        out: where service logs are written.
        color: a ``(service, line) -> str`` formatter for log lines.
        env: extra environment for every service process.
        local_llm: start the local LLM server (llama.cpp on the packaged model) and
            give services its URL as ``VB_LOCAL_LLM_URL``; ``None`` starts it when the
            ``local-llm`` extra is installed.
        well_known_ports: serve each service on its documented port (8080 gateway, ...)
            when that port is free, as ``voicebus dev`` does; False (tests, benchmarks)
            always takes a free port, so stacks started at the same moment never race
            for the same well-known port.
        nats_accounts: users and permissions of the embedded NATS (True: fresh ones,
            as ``voicebus nats-config`` makes; False: no authentication). Each service
            logs in as itself and :attr:`nats_url` carries the operator's credentials
            (for the stack's clients: tests, the CLI). An external ``nats_url`` is used
            as it is.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        nats_url: str | None = None,
        database_url: str | None = None,
        services: Sequence[str] = SERVICES,
        out: TextIO = sys.stdout,
        color: Callable[[str, str], str] | None = None,
        env: Mapping[str, str] | None = None,
        local_llm: bool | None = None,
        well_known_ports: bool = False,
        nats_accounts: NatsAccounts | bool = True,
    ) -> None:
        unknown = sorted(set(services) - set(SERVICES))
        if unknown:
            raise StackError(f"unknown services: {', '.join(unknown)}")
        self.data_dir = data_dir
        self.nats_url = nats_url
        self.database_url = database_url
        self.services = [ServiceProcess(n, 0) for n in SERVICES if n in services]
        self._out = out
        self._env = dict(env or {})
        if local_llm is None:
            local_llm = importlib.util.find_spec("llama_cpp") is not None
        self.local_llm = local_llm
        self._well_known_ports = well_known_ports
        if isinstance(nats_accounts, NatsAccounts):
            if nats_url:
                raise StackError("NATS accounts are for the embedded NATS (no nats_url)")
            self._accounts: NatsAccounts | None = nats_accounts
        else:
            self._accounts = NatsAccounts.generate() if nats_accounts and not nats_url else None
        self._service_nats_url: str | None = None
        self._llm: LlamaServer | None = None
        self.business: BusinessServer | None = None
        """The demo business's order-status server (its webhook tool's target)."""
        self.llm_url: str | None = None
        self._color = color or (lambda name, line: f"{name:<12} | {line}")
        self._nats: EmbeddedNats | None = None
        self._postgres: EmbeddedPostgres | None = None
        self._readers: list[asyncio.Task[None]] = []
        self.started_at = time.monotonic()

    async def start(self, ready_timeout: float = 60.0) -> None:
        """Start infrastructure and services and wait until every service is ready."""
        self.started_at = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.nats_url is None:
            extra = self._accounts.server_config() if self._accounts else None
            self._nats = EmbeddedNats(
                data_dir=self.data_dir / "nats", sync_always=True, extra_config=extra
            )
            await asyncio.to_thread(self._nats.start)
            self._service_nats_url = self._nats.url
            self.nats_url = (
                self._accounts.url_for(OPERATOR, self._nats.url)
                if self._accounts
                else self._nats.url
            )
        if self.database_url is None:
            self._postgres = EmbeddedPostgres(data_dir=self.data_dir / "postgres", durable=True)
            await asyncio.to_thread(self._postgres.start)
            self.database_url = await _ensure_database(self._postgres.url, DEV_DATABASE)
        try:
            # Services refuse to start on a schema that is not at head.
            await migrate_all(self.database_url)
        except MigrationError as err:
            raise StackError(f"database migrations: {err}") from err
        orders = Path("agents") / "data" / "orders.json"
        if orders.is_file():
            self.business = await BusinessServer.with_orders(orders).start()
            self._env.setdefault("VB_DEMO_BUSINESS_URL", self.business.url)
            self._env.setdefault("VB_DEMO_WEBHOOK_SECRET", self.business.secret)
        if self.local_llm:
            try:
                model = await asyncio.to_thread(prepare_model, self.data_dir / "models")
                self._llm = LlamaServer(model)
                self.llm_url = await self._llm.start()
            except EngineError as err:
                raise StackError(f"local LLM server: {err}") from err
            self._env.setdefault("VB_LOCAL_LLM_URL", self.llm_url)
        for svc in self.services:
            preferred = DEFAULT_PORTS[svc.name]
            svc.port = port_or_free(preferred) if self._well_known_ports else free_port()
            if svc.name == "gateway":
                ws = DEFAULT_MEDIA_WS_PORT
                svc.ws_port = port_or_free(ws) if self._well_known_ports else free_port()
            await self._spawn(svc)
        self._write_state()
        await self._wait_ready(ready_timeout)

    async def _spawn(self, svc: ServiceProcess) -> None:
        assert self.nats_url is not None
        assert self.database_url is not None
        env = dict(self._env)
        if self._accounts is not None:
            env.update(self._accounts.service_env(svc.name))
        svc.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"voicebus.{svc.name}",
            env=service_env(
                svc.name,
                svc.port,
                self._service_nats_url or self.nats_url,
                self.database_url,
                env,
                ws_port=svc.ws_port,
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._readers.append(asyncio.create_task(self._pump(svc)))

    async def _pump(self, svc: ServiceProcess) -> None:
        assert svc.process is not None
        assert svc.process.stdout is not None
        async for raw in svc.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            svc.tail = [*svc.tail[-49:], line]
            print(self._color(svc.name, line), file=self._out, flush=True)

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.services)
        async with httpx.AsyncClient(timeout=1.0) as client:
            while pending:
                for svc in list(pending):
                    assert svc.process is not None
                    if svc.process.returncode is not None:
                        raise StackError(
                            f"{svc.name} exited with code {svc.process.returncode}:\n"
                            + "\n".join(svc.tail[-20:])
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{svc.url}/readyz")).status_code == 200:
                            svc.ready_after_s = time.monotonic() - self.started_at
                            pending.remove(svc)
                if pending and time.monotonic() > deadline:
                    names = ", ".join(s.name for s in pending)
                    raise StackError(f"not ready after {timeout:.0f} s: {names}")
                await asyncio.sleep(0.1)

    def exited(self) -> list[ServiceProcess]:
        """Services whose process has ended."""
        return [s for s in self.services if s.process and s.process.returncode is not None]

    def nats_log(self) -> str:
        """What the embedded NATS has logged so far (empty with an external NATS)."""
        if self._nats is None or not self._nats.log_path.exists():
            return ""
        return self._nats.log_path.read_text(encoding="utf-8", errors="replace")

    def permission_violations(self) -> list[str]:
        """Lines of the embedded NATS's log where a user did what it may not."""
        return [line for line in self.nats_log().splitlines() if "Violation" in line]

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every service (they drain), SIGKILL stragglers, then stop infrastructure."""
        running = [s.process for s in self.services if s.process and s.process.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), timeout)
        except TimeoutError:
            for proc in running:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(p.wait() for p in running))
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(reader, 2.0)
        if self._llm is not None:
            await self._llm.stop()
        if self.business is not None:
            await self.business.stop()
        if self._postgres is not None:
            await asyncio.to_thread(self._postgres.stop)
        if self._nats is not None:
            await asyncio.to_thread(self._nats.stop)
        (self.data_dir / STATE_FILE).unlink(missing_ok=True)

    def _write_state(self) -> None:
        """Where everything runs, for ``voicebus bus tail`` and for tests."""
        pids = {s.name: s.process.pid for s in self.services if s.process is not None}
        if self._nats is not None and self._nats.pid is not None:
            pids["nats"] = self._nats.pid
        if self._postgres is not None and self._postgres.pid is not None:
            pids["postgres"] = self._postgres.pid
        state = {
            "pid": os.getpid(),
            "nats_url": self.nats_url,
            "database_url": self.database_url,
            "services": {s.name: s.url for s in self.services},
            "media_ws": {s.name: f"ws://127.0.0.1:{s.ws_port}" for s in self.services if s.ws_port},
            "pids": pids,
        }
        path = self.data_dir / STATE_FILE
        path.write_text(json.dumps(state, indent=2))
        path.chmod(0o600)  # a configured database URL may carry a password


async def _ensure_database(server_url: str, name: str) -> str:
    import asyncpg  # the dev kit's own dependency; imported late to keep CLI start fast

    conn = await asyncpg.connect(server_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    if exists:
        return database_url(server_url, name)
    return await create_database(server_url, name)


def read_state(data_dir: Path) -> dict[str, object] | None:
    """The state file of a running dev stack in ``data_dir``, if any."""
    path = data_dir / STATE_FILE
    if not path.exists():
        return None
    state: dict[str, object] = json.loads(path.read_text())
    return state


def color_for(name: str) -> str:
    """A stable rich color for a service's log prefix."""
    return _COLORS[SERVICES.index(name) % len(_COLORS)] if name in SERVICES else "white"


def nats_url_or_dev(url: str | None) -> str:
    """``url``, or the running dev stack's NATS, or the default local one."""
    if url:
        return url
    state = read_state(Path("var") / "dev")
    found = state.get("nats_url") if state else None
    return found if isinstance(found, str) else "nats://127.0.0.1:4222"
