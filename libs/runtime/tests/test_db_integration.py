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

from voicebus.runtime.db import create_all, create_engine, ensure_schema, ping
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
        await asyncio.gather(*(create_all(engine, SQLModel.metadata) for _ in range(3)))
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
