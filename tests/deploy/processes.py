"""Run the services as processes with exactly a given environment, for the deploy tests.

Unlike the dev stack, nothing is added to a service's environment but what a container
runtime gives any process (``PATH``, ``HOME``) and unbuffered output; the deploy files'
environment is used as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx


@dataclass
class Service:
    """One service process and where its output goes."""

    name: str
    env: dict[str, str]
    port: int
    process: asyncio.subprocess.Process | None = None
    tail: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Base URL of its HTTP port on loopback."""
        return f"http://127.0.0.1:{self.port}"


class ServiceProcesses:
    """Start services, wait until each answers ``/readyz`` 200, stop them with SIGTERM."""

    def __init__(self, home: Path, log: TextIO) -> None:
        self._home = home
        self._log = log
        self.services: dict[str, Service] = {}
        self._pumps: list[asyncio.Task[None]] = []

    async def start(self, name: str, env: Mapping[str, str]) -> Service:
        """Run ``python -m voicebus.<name>`` with ``env`` (plus PATH, HOME, unbuffered output)."""
        process_env = {
            **env,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self._home),
            "PYTHONUNBUFFERED": "1",
        }
        port = int(env[f"VB_{name.upper()}_HTTP_PORT"])
        service = Service(name, process_env, port)
        service.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"voicebus.{name}",
            env=process_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        self.services[name] = service
        self._pumps.append(asyncio.create_task(self._pump(service)))
        return service

    async def _pump(self, service: Service) -> None:
        assert service.process is not None
        assert service.process.stdout is not None
        async for raw in service.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            service.tail = [*service.tail[-59:], line]
            print(f"{service.name:<12} | {line}", file=self._log, flush=True)

    async def wait_ready(self, timeout: float) -> None:
        """Until every service is ready; a service that exits fails with its last lines."""
        deadline = time.monotonic() + timeout
        pending = list(self.services.values())
        async with httpx.AsyncClient(timeout=1.0) as client:
            while pending:
                for service in list(pending):
                    assert service.process is not None
                    if service.process.returncode is not None:
                        await asyncio.sleep(0.2)  # let the pump read its last lines
                        raise RuntimeError(
                            f"{service.name} exited with code {service.process.returncode}:\n"
                            + "\n".join(service.tail[-30:])
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{service.url}/readyz")).status_code == 200:
                            pending.remove(service)
                if pending and time.monotonic() > deadline:
                    names = ", ".join(s.name for s in pending)
                    tails = "\n".join(f"--- {s.name}\n" + "\n".join(s.tail[-15:]) for s in pending)
                    raise RuntimeError(f"not ready after {timeout:.0f} s: {names}\n{tails}")
                await asyncio.sleep(0.2)

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every service (they drain), SIGKILL what is left after ``timeout``."""
        running = [
            s.process
            for s in self.services.values()
            if s.process is not None and s.process.returncode is None
        ]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), timeout)
        except TimeoutError:
            for process in running:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in running))
        for pump in self._pumps:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(pump, 2.0)
