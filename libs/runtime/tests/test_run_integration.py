"""``Service.run`` in a real process: uvicorn serves, SIGTERM drains and exits cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from voicebus.devkit.ports import free_port

pytestmark = pytest.mark.integration

APP = textwrap.dedent(
    """
    from typing import ClassVar

    from pydantic_settings import SettingsConfigDict
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    from voicebus.runtime.service import Service
    from voicebus.runtime.settings import ServiceSettings


    class DemoSettings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="VB_DEMO_")
        service_name: ClassVar[str] = "demo"


    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_bytes(await ws.receive_bytes())
        await ws.close()


    service = Service(DemoSettings())
    app = service.asgi(Starlette(routes=[WebSocketRoute("/ws", echo)]))

    if __name__ == "__main__":
        service.run(app)
    """
)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Until ``url`` answers 200: a bound for a process that hangs, not a start-up budget (an
    interpreter importing the kit on a loaded machine takes its time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "service exited during start-up"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.1)
    raise AssertionError("service never became ready")


def test_run_serves_and_drains_on_sigterm(
    tmp_path: Path, embedded_nats_factory: Callable[..., Any]
) -> None:
    server = embedded_nats_factory()
    port = free_port()
    script = tmp_path / "demo_app.py"
    script.write_text(APP)
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("VB_")}
    env |= {
        "VB_NATS_URL": server.url,
        "VB_LOG_FORMAT": "json",
        "VB_DEMO_HTTP_PORT": str(port),
        "VB_DEMO_INSTANCE_ID": "demo-run",
    }
    process = subprocess.Popen(
        [sys.executable, str(script)], env=env, stderr=subprocess.PIPE, cwd=tmp_path
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/readyz", process)
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        metrics = httpx.get(f"{base}/metrics").text
        assert 'voicebus_service_info{instance="demo-run",service="demo"} 1.0' in metrics
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:  # served by websockets-sansio
            ws.send(b"\x00\x01frame")
            assert ws.recv(timeout=5) == b"\x00\x01frame"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # uvicorn re-raises the signal once shut down, so the exit reads "terminated by SIGTERM".
    assert process.returncode in (0, -signal.SIGTERM), stderr.decode()[-2000:]
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    messages = [line["msg"] for line in lines]
    assert "service ready" in messages
    assert messages.index("service stopped") > messages.index("service ready")
    closed = [line for line in lines if line["msg"] == "nats connection closed"]
    assert closed
    assert closed[0]["connection"] == "demo/demo-run/raw"
    assert all(line["service"] == "demo" for line in lines)
