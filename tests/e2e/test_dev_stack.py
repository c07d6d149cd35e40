"""`voicebus dev` end to end: all seven services as real processes on embedded NATS and
PostgreSQL, a command through the bus, its events in `voicebus bus tail` and in audit,
the gateway without a database, and a Ctrl-C that leaves no process behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import nats
import pytest

from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.ids import new_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 90


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def _wait_for_state(path: Path, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "voicebus dev exited early"
        if path.exists():
            state: dict[str, object] = json.loads(path.read_text())
            services = state["services"]
            assert isinstance(services, dict)
            async with httpx.AsyncClient(timeout=1) as client:
                codes = []
                for url in services.values():
                    try:
                        codes.append((await client.get(f"{url}/readyz")).status_code)
                    except httpx.HTTPError:
                        codes.append(0)
            if codes == [200] * 7:
                return state
        await asyncio.sleep(0.25)
    raise AssertionError("services not ready in time")


async def test_dev_stack_runs_everything_and_stops_clean(tmp_path: Path) -> None:
    data_dir = tmp_path / "dev"
    log = (tmp_path / "dev.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VB_")}
    proc = subprocess.Popen(
        [str(BIN / "voicebus"), "dev", "--data-dir", str(data_dir)],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        state = await _wait_for_state(data_dir / "stack.json", proc)
        nats_url, database_url = str(state["nats_url"]), str(state["database_url"])
        pids = state["pids"]
        assert isinstance(pids, dict)
        assert set(pids) == {"gateway", "media", "orchestrator", "campaigns", "recorder",
                             "audit", "edge", "nats", "postgres"}  # fmt: skip

        call_id = new_id()
        tail = subprocess.Popen(
            [str(BIN / "voicebus"), "bus", "tail", "--call", call_id, "--count", "2",
             "--timeout", "60", "--from-start", "--nats-url", nats_url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip

        # An originate command for a tenant without a stored account (the gateway asks
        # the edge): it must be answered with events rather than dropped.
        nc = await nats.connect(nats_url)
        command = OriginateCall(
            tenant_id="acme", call_id=call_id, source="test/e2e",
            data=OriginateCallData(agent_id="demo", to_number="+14155550199"),
        )  # fmt: skip
        await nc.jetstream().publish(
            command.subject, command.to_bytes(), headers={"Nats-Msg-Id": command.id}
        )
        await nc.drain()

        out, _ = await asyncio.to_thread(tail.communicate, timeout=90)
        lines = out.decode().splitlines()
        assert tail.returncode == 0, lines
        assert any("call.error.v1" in line and call_id in line for line in lines), lines
        assert any("call.ended.v1" in line and "reason='failed'" in line for line in lines)

        conn = await asyncpg.connect(database_url)
        try:
            for _ in range(100):
                row = await conn.fetchrow(
                    "SELECT status, ended_reason FROM audit.calls WHERE call_id = $1", call_id
                )
                events = await conn.fetchval(
                    "SELECT count(*) FROM audit.call_events WHERE call_id = $1", call_id
                )
                if row is not None and events == 2:
                    break
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        assert row is not None
        assert (row["status"], row["ended_reason"]) == ("ended", "failed")
        assert events == 2

        # The gateway keeps no database: it is ready without one and never connected.
        services = state["services"]
        assert isinstance(services, dict)
        async with httpx.AsyncClient(timeout=5) as client:
            gateway_ready = (await client.get(f"{services['gateway']}/readyz")).json()
        assert gateway_ready == {"status": "ready"}
        conn = await asyncpg.connect(database_url)
        try:
            apps = await conn.fetch(
                "SELECT DISTINCT split_part(application_name, '/', 1) AS service "
                "FROM pg_stat_activity WHERE datname = current_database()"
            )
        finally:
            await conn.close()
        connected = {row["service"] for row in apps}
        assert "edge" in connected
        assert "audit" in connected
        assert "gateway" not in connected
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(proc.wait, 60)
        log.close()
    assert code == 0, (tmp_path / "dev.log").read_text()[-3000:]
    leftovers = [name for name, pid in pids.items() if _alive(int(pid))]
    assert leftovers == []
    assert not (data_dir / "stack.json").exists()
