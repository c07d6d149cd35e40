"""The gateway-capacity baseline: a bare ``websockets`` server that only JSON-parses each
message and base64-decodes its payload, timing each frame from the caller's stamp.

``python -m voicebus.devkit.bench.baseline_ws '{"port": N}'``; then the same
JSON-lines commands as the load process: ``["measure", s]`` → the lags of the
next ``s`` seconds, ``["stop"]``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from voicebus.devkit.bench.stamps import read_ulaw


class Bare:
    """The server's only state: the lags seen."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.messages = 0

    async def handle(self, ws: ServerConnection) -> None:
        """Parse and decode every message; nothing else."""
        async for raw in ws:
            self.messages += 1
            message = json.loads(raw)
            if message.get("event") != "media":
                continue
            ulaw = base64.b64decode(message["media"]["payload"])
            sent = read_ulaw(ulaw)
            if sent is not None:
                self.lags_ms.append((time.monotonic_ns() - sent) / 1e6)


async def _serve(config: dict[str, Any]) -> None:
    bare = Bare()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with serve(bare.handle, "127.0.0.1", int(config["port"]), compression=None,
                     max_queue=None):  # fmt: skip
        sys.stdout.write("null\n")
        sys.stdout.flush()
        async for line in reader:
            command = json.loads(line)
            answer: Any = None
            if command[0] == "measure":
                bare.lags_ms, bare.messages = [], 0
                await asyncio.sleep(float(command[1]))
                answer = {"lags_ms": bare.lags_ms, "messages": bare.messages}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
            if command[0] == "stop":
                return


if __name__ == "__main__":
    asyncio.run(_serve(json.loads(sys.argv[1])))
