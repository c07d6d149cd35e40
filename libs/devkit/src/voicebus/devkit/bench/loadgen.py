"""The load generator: simulated callers in a process of their own.

Run by :class:`voicebus.devkit.bench.harness.LoadProcess`, which sends it
commands over a pipe. Kept out of the measuring process so that its event loop
does not delay what is measured. Two kinds:

- ``twilio``: N Twilio calls on a gateway (signed webhook, Media Streams socket,
  ``connected`` + ``start``), each sending a stamped 20 ms μ-law ``media``
  message every 20 ms, echoing marks, and timing the agent audio it receives;
- ``ws``: the same messages to a bare WebSocket server (no webhook);
- ``speech``: speech from a PCM file to calls media has claimed (``["feed", ids]``);
- ``nats``: the raw nats-py baseline, N calls' stamped PCM frames published
  straight to ``vb.audio.<call>.in`` at the same rate.

Commands, one JSON array per line on stdin, each answered by one JSON line on
stdout: ``["calls", n]`` → the new calls' ids; ``["measure", s]`` → stats of
the next ``s`` seconds; ``["stop"]``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
from nats.aio.client import Client

from voicebus.contracts import subjects
from voicebus.contracts.audio import encode_headers
from voicebus.contracts.ids import new_id
from voicebus.devkit.bench import twilio_wire as wire
from voicebus.devkit.bench.stamps import pcm_frame, read_ulaw, ulaw_frame
from voicebus.devkit.bench.wsclient import WsClient

TICK_S = 0.02
SLOTS = 10
SLOT_S = TICK_S / SLOTS
_SETUP_CONCURRENCY = 16


@dataclass
class _Call:
    call_id: str
    stream_sid: str
    ws: WsClient | None = None
    seq: int = 2
    chunk: int = 0


@dataclass
class _Stats:
    out_lags_ms: list[float] = field(default_factory=list)
    sent: int = 0
    late_ticks: int = 0
    marks: int = 0
    failed_calls: int = 0


class Load:
    """The calls and the 20 ms clock that drives them."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.kind: str = config["kind"]
        self.config = config
        self.calls: list[_Call] = []
        self.stats = _Stats()
        self.nc: Client | None = None
        self._speech: list[bytes] = []
        if self.kind == "speech":
            with open(config["pcm_path"], "rb") as f:
                pcm = f.read()
            self._speech = [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]

    async def feed(self, call_ids: list[str]) -> list[str]:
        """Start feeding speech to these (already claimed) calls."""
        if self.nc is None:
            self.nc = await nats.connect(self.config["nats_url"], pending_size=2**26)
        self.calls += [_Call(call_id, "", chunk=len(self.calls) * 37) for call_id in call_ids]
        return call_ids

    async def add(self, n: int) -> list[str]:
        """Open calls until there are ``n``; the new calls' ids."""
        want = n - len(self.calls)
        if want <= 0:
            return []
        if self.kind == "nats":
            if self.nc is None:
                self.nc = await nats.connect(self.config["nats_url"], pending_size=2**26)
            new = [_Call(new_id(), "") for _ in range(want)]
        else:
            gate = asyncio.Semaphore(_SETUP_CONCURRENCY)
            async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
                results = await asyncio.gather(*(self._open(client, gate) for _ in range(want)))
            new = [c for c in results if c is not None]
            self.stats.failed_calls += want - len(new)
        self.calls += new
        return [c.call_id for c in new]

    async def _open(self, client: httpx.AsyncClient, gate: asyncio.Semaphore) -> _Call | None:
        cfg = self.config
        account, call_sid = wire.new_sid("AC"), wire.new_sid("CA")
        async with gate:
            try:
                if self.kind == "ws":  # a bare WebSocket server: no webhook
                    stream = wire.Stream(cfg["ws_url"], {"call_id": new_id()})
                else:
                    stream = await wire.place_call(
                        client, cfg["gateway_url"], cfg["auth_token"], cfg["agent"], call_sid,
                        account,
                    )  # fmt: skip
                call = _Call(stream.parameters.get("call_id", ""), wire.new_sid("MZ"))
                call.ws = await WsClient.connect(
                    stream.ws_url, functools.partial(self._on_text, call)
                )
            except (OSError, ConnectionError, TimeoutError, httpx.HTTPError):
                return None  # counted; the other calls go on
        call.ws.send_text(wire.connected())
        call.ws.send_text(wire.start(call.stream_sid, account, call_sid, stream.parameters))
        return call

    def _on_text(self, call: _Call, data: bytes) -> None:
        if b'"event":"media"' in data:
            start = data.find(b'"payload":"')
            if start >= 0:
                head = base64.b64decode(data[start + 11 : start + 35])
                sent = read_ulaw(head)
                if sent is not None:
                    self.stats.out_lags_ms.append((time.monotonic_ns() - sent) / 1e6)
        elif b'"event":"mark"' in data and call.ws is not None:
            name = json.loads(data)["mark"]["name"]
            call.seq += 1
            call.ws.send_text(wire.mark(call.seq, call.stream_sid, name))
            self.stats.marks += 1

    async def clock(self) -> None:
        """Send one frame per call every 20 ms of real time, the calls spread over the 20 ms.

        Real calls are not in phase: sending every call's frame at the same instant would
        measure a burst's queueing, not the path. Call ``i`` sends in slot ``i % SLOTS``.
        """
        loop = asyncio.get_running_loop()
        start, tick = loop.time(), 0
        while True:
            tick += 1
            delay = start + tick * SLOT_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -TICK_S:
                # A stalled process skips the frames it missed, as a phone's clock would
                # not send them in a burst afterwards.
                missed = int(-delay / SLOT_S)
                self.stats.late_ticks += missed // SLOTS
                tick += missed
            calls = self.calls[tick % SLOTS :: SLOTS]
            if self.kind == "nats":
                await self._publish(calls)
            elif self.kind == "speech":
                await self._speak(calls)
            else:
                self._send(calls)
            self.stats.sent += len(calls)

    def _send(self, calls: list[_Call]) -> None:
        for call in calls:
            ws = call.ws
            if ws is None:
                continue
            call.seq += 1
            call.chunk += 1
            payload = base64.b64encode(ulaw_frame(time.monotonic_ns())).decode()
            ws.send_text(wire.media(call.seq, call.chunk, call.stream_sid, payload))

    async def _publish(self, calls: list[_Call]) -> None:
        nc = self.nc
        if nc is None:  # the clock ticks before the first calls (and the connection) exist
            return
        for call in calls:
            call.chunk += 1
            headers = encode_headers(8000, call.chunk, call.chunk * 20)
            await nc.publish(
                subjects.audio_in(call.call_id), pcm_frame(time.monotonic_ns()), headers=headers
            )

    async def _speak(self, calls: list[_Call]) -> None:
        nc, speech = self.nc, self._speech
        if nc is None:
            return
        for call in calls:
            call.chunk += 1
            call.seq += 1
            headers = encode_headers(8000, call.seq, call.seq * 20)
            frame = speech[call.chunk % len(speech)]
            await nc.publish(subjects.audio_in(call.call_id), frame, headers=headers)

    async def measure(self, seconds: float) -> dict[str, Any]:
        """Stats of the next ``seconds``."""
        self.stats = _Stats(failed_calls=self.stats.failed_calls)
        await asyncio.sleep(seconds)
        stats, self.stats = self.stats, _Stats(failed_calls=self.stats.failed_calls)
        return {
            "out_lags_ms": stats.out_lags_ms,
            "sent": stats.sent,
            "late_ticks": stats.late_ticks,
            "marks": stats.marks,
            "failed_calls": stats.failed_calls,
            "calls": len(self.calls),
        }

    async def stop(self) -> None:
        """Hang every call up."""
        for call in self.calls:
            if call.ws is not None:
                call.ws.close()
        if self.nc is not None:
            await self.nc.drain()


async def _serve(config: dict[str, Any]) -> None:
    load = Load(config)
    clock = asyncio.create_task(load.clock())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        async for line in reader:
            command = json.loads(line)
            if command[0] == "calls":
                answer: Any = await load.add(int(command[1]))
            elif command[0] == "feed":
                answer = await load.feed(list(command[1]))
            elif command[0] == "measure":
                answer = await load.measure(float(command[1]))
            else:
                clock.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await clock
                await load.stop()
                answer = None
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
            if answer is None:
                return
    finally:
        clock.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await clock


def main() -> None:
    """``python -m voicebus.devkit.bench.loadgen CONFIG_JSON``; commands on stdin."""
    asyncio.run(_serve(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
