"""The voicebus pytest plugin's fixtures, used as other packages' tests use them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import textwrap
import uuid
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from voicebus.devkit import pytest_plugin
from voicebus.devkit.pytest_plugin import (
    DATABASE_URL_ENV,
    NATS_URL_ENV,
    EmbeddedNatsFactory,
    configured_url,
    nats_server_url,
    postgres_server_url,
)

pytestmark = pytest.mark.integration


async def test_nats_client_and_jetstream_reach_the_session_server(
    nats_url: str, nats_client: Client, jetstream: JetStreamContext
) -> None:
    assert nats_client.is_connected
    assert nats_client.connected_url is not None
    assert nats_url.endswith(f":{nats_client.connected_url.port}")
    # The session server is shared by every test: names are unique.
    stream, subject = f"T{uuid.uuid4().hex}", f"devkit.{uuid.uuid4().hex}"
    await jetstream.add_stream(name=stream, subjects=[subject])
    try:
        ack = await jetstream.publish(subject, b"hello")
        assert ack.stream == stream
        assert (await jetstream.get_msg(stream, ack.seq)).data == b"hello"
    finally:
        await jetstream.delete_stream(stream)


async def test_embedded_nats_factory_starts_private_empty_servers(
    nats_url: str, embedded_nats_factory: EmbeddedNatsFactory, tmp_path: Path
) -> None:
    first = embedded_nats_factory()
    second = embedded_nats_factory(data_dir=tmp_path / "second", sync_always=True)
    assert len({nats_url, first.url, second.url}) == 3
    assert second.data_dir == tmp_path / "second"
    for server in (first, second):
        client = await nats.connect(server.url)
        try:
            assert (await client.jetstream().account_info()).streams == 0
        finally:
            await client.drain()


@pytest.mark.parametrize("run", ["first", "second"])
async def test_database_url_is_a_fresh_database_per_test(database_url: str, run: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        name = await conn.fetchval("SELECT current_database()")
        assert re.fullmatch(r"vbtest_[0-9a-f]{12}", name)
        assert database_url.startswith("postgresql://")
        assert database_url.endswith(f"/{name}")
        # Whichever run goes second would see this table if databases were shared.
        assert await conn.fetchval("SELECT to_regclass('public.probe')") is None
        await conn.execute("CREATE TABLE probe (run text)")
        await conn.execute("INSERT INTO probe VALUES ($1)", run)
    finally:
        await conn.close()


def test_configured_url_ignores_unset_and_blank_values() -> None:
    assert configured_url(NATS_URL_ENV, {}) is None
    assert configured_url(NATS_URL_ENV, {NATS_URL_ENV: "  "}) is None
    assert configured_url(NATS_URL_ENV, {NATS_URL_ENV: " nats://ci:4222 "}) == "nats://ci:4222"


def test_env_urls_win_without_starting_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("no embedded server may start when the URL is configured")

    monkeypatch.setattr(pytest_plugin, "EmbeddedNats", refuse)
    monkeypatch.setattr("voicebus.devkit.embedded_postgres.EmbeddedPostgres", refuse)
    environ = {NATS_URL_ENV: "nats://nats.ci:4222", DATABASE_URL_ENV: "postgresql://u@pg.ci/db"}
    with nats_server_url(environ) as url:
        assert url == "nats://nats.ci:4222"
    with postgres_server_url(environ) as url:
        assert url == "postgresql://u@pg.ci/db"


def test_without_env_urls_embedded_servers_start_and_stop() -> None:
    with nats_server_url({}) as url:
        assert re.fullmatch(r"nats://127\.0\.0\.1:\d+", url)
    with postgres_server_url({}) as url:
        assert re.fullmatch(r"postgresql://postgres@127\.0\.0\.1:\d+/postgres", url)


INNER_TESTS = """
import json
import os
from pathlib import Path

import asyncpg
import pytest

RECORD = Path(__file__).with_name("record.json")


def record(**values):
    data = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    data.update(values)
    RECORD.write_text(json.dumps(data))


def test_session_urls_come_from_the_environment(nats_url, postgres_url):
    assert nats_url == os.environ["VB_TEST_NATS_URL"]
    assert postgres_url == os.environ["VB_TEST_DATABASE_URL"]


async def test_jetstream_talks_to_the_configured_server(jetstream):
    await jetstream.add_stream(name="FROM_INNER", subjects=["inner.>"])
    await jetstream.publish("inner.x", b"x")


async def test_database_url_lives_on_the_configured_server(database_url):
    conn = await asyncpg.connect(database_url)
    record(database=await conn.fetchval("SELECT current_database()"))
    await conn.close()


def test_factory_server_runs(embedded_nats_factory):
    record(factory_pid=embedded_nats_factory().pid)


def test_factory_server_was_stopped_after_the_previous_test():
    with pytest.raises(ProcessLookupError):
        os.kill(json.loads(RECORD.read_text())["factory_pid"], 0)
"""

INNER_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


@pytest.fixture
def inner_project(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text(textwrap.dedent(INNER_INI))
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS))
    return tmp_path


async def test_fixtures_use_env_urls_in_a_real_pytest_run(
    inner_project: Path,
    embedded_nats_factory: EmbeddedNatsFactory,
    postgres_url: str,
) -> None:
    configured_nats = embedded_nats_factory()
    env = {**os.environ, NATS_URL_ENV: configured_nats.url, DATABASE_URL_ENV: postgres_url}
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(inner_project)],
        cwd=inner_project,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    # The inner session also migrates its template database (every service schema) once.
    output = (await asyncio.wait_for(process.communicate(), timeout=180))[0].decode()
    assert process.returncode == 0, output
    assert "5 passed" in output

    client = await nats.connect(configured_nats.url)
    try:
        info = await client.jetstream().stream_info("FROM_INNER")
        assert info.state.messages == 1
    finally:
        await client.drain()

    recorded = json.loads((inner_project / "record.json").read_text())
    conn = await asyncpg.connect(postgres_url)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = $1", recorded["database"]
        )
    finally:
        await conn.close()
    assert recorded["database"].startswith("vbtest_")
    assert left == 0, "database_url drops its database after the test"
