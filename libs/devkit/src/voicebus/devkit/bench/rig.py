"""The gateway under a caller load, with both ends of each frame's trip timed.

Caller → bus: the load process stamps each ``media`` message with its send
time; a raw nats-py subscription per call on ``vb.audio.<call>.in`` — as media
subscribes — decodes the frame and reads the stamp back. Bus → caller: this
process publishes stamped agent frames on ``vb.audio.<call>.out`` for calls
whose agent is speaking (half of the time, staggered across calls), and the
load process reads the stamp from the ``media`` message it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client
from nats.aio.msg import Msg

from voicebus.contracts import subjects
from voicebus.contracts.audio import decode_frame, encode_headers
from voicebus.devkit.bench.harness import (
    QUIET_ENV,
    AgentOwner,
    CpuWindow,
    LoadProcess,
    Profiler,
    connect,
    pid_of,
    stack,
    twilio_load,
    url_of,
)
from voicebus.devkit.bench.stamps import pcm_frame, read_pcm
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.ports import free_port
from voicebus.devkit.stack import DevStack, service_env

SPEAK_TICKS = 100  # the agent speaks 2 s, then listens 2 s
SAMPLE_EVERY = 10
TICK_S = 0.02
SLOTS = 10
SLOT_S = TICK_S / SLOTS


@dataclass
class Level:
    """What one load level measured."""

    calls: int
    seconds: float
    in_lags_ms: list[float]
    out_lags_ms: list[float]
    cpu_s: dict[str, float]
    sent_in: int
    received_in: int
    sent_out: int
    received_out: int
    failed_calls: int
    late_ticks: int
    sampled_calls: int = 0
    profile: list[str] = field(default_factory=list)

    @property
    def expected_in(self) -> int:
        """Frames of the sampled calls sent in the window."""
        return round(self.sent_in * self.sampled_calls / self.calls) if self.calls else 0


class _Subscriber:
    """Per-call ``audio.in`` subscriptions on every ``SAMPLE_EVERY``-th call, recording each
    frame's trip time.

    A sample, because one Python process reading 50,000 frames a second would itself be
    the bottleneck (and be cut off by the server as a slow consumer), not what is measured.
    """

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.lags_ms: list[float] = []
        self.calls = 0
        self.sampled = 0

    async def add(self, call_ids: list[str]) -> None:
        for call_id in call_ids:
            if self.calls % SAMPLE_EVERY == 0:
                await self.nc.subscribe(subjects.audio_in(call_id), cb=self._on_frame)
                self.sampled += 1
            self.calls += 1
        await self.nc.flush()

    async def _on_frame(self, msg: Msg) -> None:
        frame = decode_frame(msg.data, msg.headers)  # what media's handler does first
        sent = read_pcm(frame.pcm)
        if sent is not None:
            self.lags_ms.append((time.monotonic_ns() - sent) / 1e6)


class _Speaker:
    """Agent audio for every call, half of the time each, staggered."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.calls: list[str] = []
        self.sent = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start, slot_tick = loop.time(), 0
        while True:
            slot_tick += 1
            delay = start + slot_tick * SLOT_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -TICK_S:
                slot_tick += int(-delay / SLOT_S)  # missed frames are skipped, not bursted
            tick, slot = divmod(slot_tick, SLOTS)
            for index in range(slot, len(self.calls), SLOTS):  # calls spread over 20 ms
                phase = (tick + index * 7) % (2 * SPEAK_TICKS)
                if phase >= SPEAK_TICKS:
                    continue
                burst = (tick + index * 7) // (2 * SPEAK_TICKS)
                headers = encode_headers(
                    8000, tick, tick * 20, f"u{burst}", last=phase == SPEAK_TICKS - 1
                )
                await self.nc.publish(
                    subjects.audio_out(self.calls[index]),
                    pcm_frame(time.monotonic_ns()),
                    headers=headers,
                )
                self.sent += 1


class GatewayRig:
    """The server process under test (the gateway, or the floor relay: its pid is under
    ``"gateway"``), the load process and this process's measuring ends."""

    def __init__(self, nc: Client, load: LoadProcess, pids: dict[str, int], speak: bool) -> None:
        self.nc = nc
        self.load = load
        self.pids = pids
        self.subscriber = _Subscriber(nc)
        self.speaker = _Speaker(nc)
        self._speak = speak
        self.calls = 0
        self.nats_url = ""

    async def level(self, calls: int, seconds: float, profile: Path | None = None) -> Level:
        """Grow to ``calls`` calls, let them settle, and measure for ``seconds``."""
        new = await self.load.request("calls", calls)
        await self.subscriber.add(new)
        if self._speak:
            self.speaker.calls += new
        self.calls = calls
        await asyncio.sleep(2.0)
        self.subscriber.lags_ms = []
        sent_out = self.speaker.sent
        cpu = CpuWindow(self.pids)
        profiler = Profiler(self.pids["gateway"], seconds, profile) if profile else None
        stats: dict[str, Any] = await self.load.request("measure", seconds)
        in_lags, self.subscriber.lags_ms = self.subscriber.lags_ms, []
        return Level(
            calls=stats["calls"],
            seconds=seconds,
            in_lags_ms=in_lags,
            out_lags_ms=stats["out_lags_ms"],
            cpu_s=cpu.used(),
            sent_in=stats["sent"],
            received_in=len(in_lags),
            sent_out=self.speaker.sent - sent_out,
            received_out=len(stats["out_lags_ms"]),
            failed_calls=stats["failed_calls"],
            late_ticks=stats["late_ticks"],
            sampled_calls=self.subscriber.sampled,
            profile=await profiler.summary() if profiler else [],
        )


@asynccontextmanager
async def gateway_rig(
    work_dir: Path, *, speak: bool, env: dict[str, str] | None = None, processes: int = 1
) -> AsyncIterator[GatewayRig]:
    """A gateway with embedded NATS and PostgreSQL, a stub agent owner, a caller load.

    With ``processes=2`` a second gateway process shares the first one's media port
    (``SO_REUSEPORT``): webhooks reach the first, the kernel spreads the sockets over
    both. Their pids are ``gateway`` and ``gateway-2``.
    """
    env = {**(env or {}), **({"VB_GATEWAY_WS_REUSE_PORT": "true"} if processes > 1 else {})}
    async with stack(work_dir, ["gateway"], env) as bench:
        dev = bench.dev
        assert dev.nats_url is not None
        nc = await connect(dev.nats_url)
        await AgentOwner().serve(nc)
        load = await LoadProcess.start(twilio_load(url_of(dev, "gateway")))
        pids = {"gateway": pid_of(dev, "gateway"), "load": load.pid}
        if bench.nats.pid is not None:
            pids["nats-server"] = bench.nats.pid
        extra = [await _second_gateway(dev, env) for _ in range(processes - 1)]
        for index, proc in enumerate(extra, start=2):
            pids[f"gateway-{index}"] = proc.pid
        rig = GatewayRig(nc, load, pids, speak)
        rig.nats_url = dev.nats_url
        speaker = asyncio.create_task(rig.speaker.run()) if speak else None
        try:
            yield rig
        finally:
            if speaker is not None:
                speaker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await speaker
            await load.close()
            await nc.drain()
            for proc in extra:
                proc.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 20)


async def _second_gateway(dev: DevStack, env: dict[str, str]) -> asyncio.subprocess.Process:
    """Another gateway process on the first one's media port (both bind it SO_REUSEPORT)."""
    first = next(s for s in dev.services if s.name == "gateway")
    assert dev.nats_url is not None
    assert dev.database_url is not None
    port = free_port()
    extra = {**QUIET_ENV, **env, "VB_GATEWAY_INSTANCE_ID": f"gw-{port}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voicebus.gateway",
        env=service_env("gateway", port, dev.nats_url, dev.database_url, extra,
                        ws_port=first.ws_port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with httpx.AsyncClient(timeout=1.0) as client:
        async with asyncio.timeout(120):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        return proc
                if proc.returncode is not None:
                    raise RuntimeError(f"the second gateway exited with code {proc.returncode}")
                await asyncio.sleep(0.2)


@asynccontextmanager
async def _speaking(rig: GatewayRig) -> AsyncIterator[GatewayRig]:
    speaker = asyncio.create_task(rig.speaker.run())
    try:
        yield rig
    finally:
        speaker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await speaker


@asynccontextmanager
async def floor_rig(work_dir: Path) -> AsyncIterator[GatewayRig]:
    """The minimal relay (``floor_relay``) under the same load and measurement as the gateway."""
    server = EmbeddedNats(data_dir=work_dir / "nats")
    await asyncio.to_thread(server.start)
    port = free_port()
    relay = await LoadProcess.start(
        {"port": port, "nats_url": server.url}, module="voicebus.devkit.bench.floor_relay"
    )
    try:
        assert relay.process.stdout is not None
        await relay.process.stdout.readline()  # listening
        nc = await connect(server.url)
        load = await LoadProcess.start({"kind": "ws", "ws_url": f"ws://127.0.0.1:{port}/"})
        pids = {"gateway": relay.pid, "load": load.pid}
        if server.pid is not None:
            pids["nats-server"] = server.pid
        rig = GatewayRig(nc, load, pids, speak=True)
        rig.nats_url = server.url
        try:
            async with _speaking(rig):
                yield rig
        finally:
            await load.close()
            await nc.drain()
    finally:
        await relay.close()
        await asyncio.to_thread(server.close)


@asynccontextmanager
async def nats_rig(nats_url: str) -> AsyncIterator[GatewayRig]:
    """The raw nats-py baseline: stamped frames published straight to ``audio.in``."""
    nc = await connect(nats_url)
    load = await LoadProcess.start({"kind": "nats", "nats_url": nats_url})
    try:
        yield GatewayRig(nc, load, {"load": load.pid}, speak=False)
    finally:
        await load.close()
        await nc.drain()
