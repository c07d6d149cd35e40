"""Database helpers against a real PostgreSQL: schema, search_path, tables, concurrency."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Field, SQLModel

from voicebus.runtime.db import create_engine, ensure_schema, ping
from voicebus.runtime.logs import ConsoleFormatter, JsonFormatter
from voicebus.runtime.service import Service
from voicebus.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration


class Note(SQLModel, table=True):
    """A table that lives in whichever schema the engine's search_path names."""

    __tablename__ = "runtime_test_notes"

    id: int | None = Field(default=None, primary_key=True)
    body: str


async def test_schema_search_path_and_tables(database_url: str) -> None:
    engine = create_engine(database_url, "audit", application_name="audit/test")
    try:
        await asyncio.gather(*(ensure_schema(engine, "audit") for _ in range(4)))
        await ensure_schema(engine, "audit")
        async with engine.begin() as conn:
            await conn.run_sync(Note.__table__.create)  # type: ignore[attr-defined]
        assert await ping(engine)
        async with engine.begin() as conn:
            assert (await conn.execute(text("SHOW search_path"))).scalar() == "audit"
            await conn.execute(text("INSERT INTO runtime_test_notes (body) VALUES ('hi')"))
            where = await conn.execute(
                text(
                    "SELECT table_schema FROM information_schema.tables "
                    "WHERE table_name = 'runtime_test_notes'"
                )
            )
            assert where.scalars().all() == ["audit"]
            name = await conn.execute(text("SELECT current_setting('application_name')"))
            assert name.scalar() == "audit/test"
    finally:
        await engine.dispose()


async def test_postgres_scheme_is_accepted(database_url: str) -> None:
    engine = create_engine(database_url.replace("postgresql://", "postgres://", 1), "campaigns")
    try:
        await ensure_schema(engine, "campaigns")
        assert await ping(engine)
    finally:
        await engine.dispose()


async def test_service_opens_its_schema(
    clean_env: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    embedded_nats_factory: Callable[..., Any],
    database_url: str,
) -> None:
    server = embedded_nats_factory()
    settings = settings_cls(nats_url=server.url, database_url=database_url)
    service = Service(settings, db_schema="demo")
    async with service.lifespan():
        assert service.db is not None
        results = await service.check_readiness()
        assert results["database"] is True
        assert all(results.values()), results
        async with service.db.connect() as conn:
            found = await conn.execute(
                text("SELECT 1 FROM information_schema.schemata WHERE schema_name = 'demo'")
            )
            assert found.scalar() == 1
    assert service.db is None


async def test_a_statement_over_its_timeout_is_cancelled(database_url: str) -> None:
    engine = create_engine(database_url, "audit", statement_timeout_s=0.3, connect_timeout_s=5)
    try:
        async with engine.connect() as conn:
            with pytest.raises(TimeoutError):
                await conn.execute(text("SELECT pg_sleep(5)"))
        async with engine.connect() as conn:  # the pool is still usable
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_an_unreachable_database_fails_within_the_connect_timeout() -> None:
    # A listening socket that never answers the PostgreSQL handshake.
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"postgresql://u:p@127.0.0.1:{port}/db"
    engine = create_engine(url, "audit", connect_timeout_s=0.5, pool_timeout_s=1)
    try:
        async with asyncio.timeout(20):  # far above the setting: only a hang trips it
            with pytest.raises(TimeoutError):
                async with engine.connect():
                    pass
    finally:
        await engine.dispose()
        server.close()


async def test_a_failing_statement_logs_no_parameter_and_no_refused_value(
    database_url: str,
) -> None:
    number = "+14155550123"
    engine = create_engine(database_url, "runtime_pii")
    failures: list[DBAPIError] = []
    try:
        await ensure_schema(engine, "runtime_pii")
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS people (phone text UNIQUE)"))
            await conn.execute(text("TRUNCATE people"))
        insert = text("INSERT INTO people (phone) VALUES (:phone)")
        for statement, values in (
            (insert, {"phone": number}),  # the second time: a unique violation naming the key
            (insert, {"phone": number}),
            (text("SELECT CAST(:v AS integer)"), {"v": number}),  # quotes the refused text
        ):
            try:
                async with engine.begin() as conn:
                    await conn.execute(statement, values)
            except DBAPIError as err:
                failures.append(err)
    finally:
        await engine.dispose()
    assert len(failures) == 2
    assert any(number in str(f.orig) for f in failures)  # what would leak without redaction
    assert all("parameters hidden" in str(f) for f in failures)  # the engine's hide_parameters
    for formatter in (
        JsonFormatter(service="t", instance="t1", redact_pii=True),
        ConsoleFormatter(service="t", instance="t1", redact_pii=True),
    ):
        for failure in failures:
            record = logging.LogRecord(
                "voicebus.test", logging.ERROR, __file__, 1, "store failed: %s", (failure,),
                (type(failure), failure, failure.__traceback__),
            )  # fmt: skip
            line = formatter.format(record)
            assert number not in line, line
            assert "SQLSTATE" in line
            assert type(failure).__name__ in line
