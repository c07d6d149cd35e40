"""What the benchmarks share: the stack under test, a stub agent owner, CPU accounting,
the load process and py-spy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import nats
import psutil  # type: ignore[import-untyped]  # ships no type marker
from nats.aio.client import Client
from nats.aio.msg import Msg

from voicebus.contracts.rpc import (
    AGENTS_GET,
    AgentProfile,
    AgentReply,
    EngineChoice,
    GetAgent,
    TurnSettings,
)
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.stack import DevStack

QUIET_ENV: Mapping[str, str] = {"VB_LOG_LEVEL": "WARNING", "VB_LOG_FORMAT": "json"}
"""Services under load log warnings only: per-call info lines are not what is measured."""
AGENT = "bench"


@dataclass
class BenchStack:
    """The stack under test and its NATS server."""

    dev: DevStack
    nats: EmbeddedNats


@asynccontextmanager
async def stack(
    work_dir: Path, services: Sequence[str], env: Mapping[str, str] | None = None
) -> AsyncIterator[BenchStack]:
    """Embedded NATS and PostgreSQL plus ``services``, each its own process.

    NATS keeps JetStream's default sync interval (the dev stack syncs every write,
    which caps a backlog's publishing at ~1,000 events/s on this kind of disk).
    """
    log = await asyncio.to_thread(_fresh_dir_log, work_dir)
    server = EmbeddedNats(data_dir=work_dir / "nats")
    await asyncio.to_thread(server.start)
    dev = DevStack(
        work_dir,
        nats_url=server.url,
        services=services,
        out=log,
        env={**QUIET_ENV, **(env or {})},
        local_llm=False,
    )
    try:
        await dev.start(ready_timeout=120.0)
        yield BenchStack(dev, server)
    finally:
        await dev.stop()
        await asyncio.to_thread(server.close)
        log.close()


def _fresh_dir_log(work_dir: Path) -> TextIO:
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    return (work_dir / "services.log").open("w")


def pid_of(dev: DevStack, service: str) -> int:
    """The process id of a service of the stack."""
    for svc in dev.services:
        if svc.name == service and svc.process is not None:
            return svc.process.pid
    raise LookupError(service)


def url_of(dev: DevStack, service: str) -> str:
    """The HTTP base URL of a service of the stack."""
    return next(s.url for s in dev.services if s.name == service)


class AgentOwner:
    """Answers agent lookups as the orchestrator would, for one stub agent.

    Args:
        stt: the agent's STT engine.
        tts: the agent's TTS engine.
        turn: the agent's turn-taking (the defaults when None).
    """

    def __init__(
        self, stt: str = "null", tts: str = "silent", turn: TurnSettings | None = None
    ) -> None:
        self._stt, self._tts = stt, tts
        self._turn = turn or TurnSettings()
        self.lookups = 0

    async def serve(self, nc: Client) -> None:
        """Subscribe on ``nc``."""
        await nc.subscribe(AGENTS_GET, cb=self._answer)
        await nc.flush()

    async def _answer(self, msg: Msg) -> None:
        self.lookups += 1
        ask = GetAgent.model_validate_json(msg.data)
        profile = AgentProfile(
            agent_id=ask.agent_id,
            name="benchmark agent",
            stt=EngineChoice(engine=self._stt),
            tts=EngineChoice(engine=self._tts),
            turn=self._turn,
        )
        await msg.respond(AgentReply(ok=True, agent=profile).model_dump_json().encode())


@dataclass
class CpuWindow:
    """CPU seconds used by processes between two samples."""

    pids: dict[str, int]

    def __post_init__(self) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in self.pids.items()}
        self._start = self._sample()

    def _sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, proc in self._procs.items():
            try:
                times = proc.cpu_times()
                out[name] = times.user + times.system
            except psutil.Error:
                out[name] = 0.0
        return out

    def used(self) -> dict[str, float]:
        """CPU seconds per process since this window began."""
        now = self._sample()
        return {name: round(now[name] - self._start[name], 3) for name in now}


class LoadProcess:
    """The load generator (:mod:`voicebus.devkit.bench.loadgen`) in its own process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._lock = asyncio.Lock()

    @classmethod
    async def start(
        cls, config: dict[str, Any], module: str = "voicebus.devkit.bench.loadgen"
    ) -> LoadProcess:
        """Start ``python -m module CONFIG_JSON`` (a JSON-lines command loop on stdin)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, json.dumps(config),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=2**28,
        )  # fmt: skip
        return cls(process)

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.process.pid

    async def request(self, *command: Any, timeout: float = 300.0) -> Any:
        """Send a command and wait for its answer."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        async with self._lock:
            stdin.write((json.dumps(command) + "\n").encode())
            await stdin.drain()
            line = await asyncio.wait_for(stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the load process exited with code {self.process.returncode}")
        return json.loads(line)

    async def close(self) -> None:
        """Stop the calls and the process."""
        with contextlib.suppress(Exception):
            await self.request("stop", timeout=30.0)
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def twilio_load(gateway_url: str) -> dict[str, Any]:
    """Config of a Twilio caller load on the gateway at ``gateway_url``."""
    return {
        "kind": "twilio",
        "gateway_url": gateway_url,
        "auth_token": DEV_TWILIO_AUTH_TOKEN,
        "agent": AGENT,
    }


async def connect(url: str) -> Client:
    """A raw nats-py client with room for bursts."""
    return await nats.connect(url, pending_size=2**26)


class Profiler:
    """``py-spy record`` of one process for a while, summarized by the hottest frames."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)  # the results directory may not exist yet
        binary = Path(sys.executable).with_name("py-spy")
        self._proc: subprocess.Popen[bytes] | None = None
        if binary.exists():
            self._proc = subprocess.Popen(
                [str(binary), "record", "--pid", str(pid), "--duration", str(int(seconds)),
                 "--format", "raw", "--rate", "50", "--nonblocking", "--output", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip

    async def summary(self, top: int = 12) -> list[str]:
        """Wait for the recording; the frames most often on top of the stack (self time)."""
        if self._proc is None:
            return ["py-spy not available"]
        await asyncio.to_thread(self._proc.wait, 120)
        if not self.out.exists():
            return ["py-spy recorded nothing (ptrace not permitted?)"]
        leaves: Counter[str] = Counter()
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frame = stack.rsplit(";", 1)[-1]
            leaves[_short(frame)] += int(count)
            total += int(count)
        return [f"{100 * n / total:.1f}% {frame}" for frame, n in leaves.most_common(top)]


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` → ``func (module.py)``."""
    name, _, where = frame.partition(" (")
    file = where.split(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if file else name
