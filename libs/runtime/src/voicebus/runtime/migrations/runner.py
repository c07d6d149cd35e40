"""Programmatic Alembic on the async engine: upgrade, check and new revisions per schema.

Each schema migrates inside one transaction that first takes an advisory lock
named after the schema, so two instances (two ``migrate`` jobs, or a job and
a developer) never run the same revisions at once: the second waits, then
finds the schema at head and does nothing. PostgreSQL's DDL is transactional,
so a failed revision leaves the schema as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicebus.runtime import db as dbkit
from voicebus.runtime.migrations.spec import VERSION_TABLE, MigrationError, MigrationSet

log = logging.getLogger("voicebus.runtime.migrations")


@dataclass(frozen=True)
class Outcome:
    """What one upgrade did.

    Attributes:
        service: the service whose schema was migrated.
        before: the revision found (None: no version table).
        after: the revision the schema is at now.
        adopted: the schema held an earlier release's tables and no version table.
    """

    service: str
    before: str | None
    after: str | None
    adopted: bool


def config(migrations: MigrationSet, connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for ``migrations`` that runs on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", migrations.script_location)
    # Revision files are importable module names: v0002_add_x.py.
    cfg.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    cfg.attributes["migration_set"] = migrations
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def heads(migrations: MigrationSet) -> tuple[str, ...]:
    """The head revisions shipped with this release (one, unless a merge is missing)."""
    return tuple(sorted(ScriptDirectory.from_config(config(migrations)).get_heads()))


async def current(conn: AsyncConnection, migrations: MigrationSet) -> str | None:
    """The revision recorded in the schema's version table, or None without one."""
    table = f"{migrations.schema}.{VERSION_TABLE}"
    if await conn.scalar(text("SELECT to_regclass(:t)"), {"t": table}) is None:
        return None
    # The schema is a validated identifier: safe in SQL, which takes no parameter for it.
    query = text(f"SELECT version_num FROM {table}")  # noqa: S608 - validated identifier
    rows = (await conn.execute(query)).scalars().all()
    return ",".join(sorted(str(r) for r in rows)) or None


async def require_head(engine: AsyncEngine, migrations: MigrationSet) -> None:
    """Check that the schema is at this release's head.

    Raises:
        MigrationError: it is not; the message names the command that fixes it.
    """
    expected = ",".join(heads(migrations))
    async with engine.connect() as conn:
        found = await current(conn, migrations)
    if found != expected:
        raise MigrationError(
            f"database schema {migrations.schema!r} is at revision {found or 'none'}, this "
            f"release needs {expected}: run `{migrations.command}` (see README, Migrations)"
        )


async def _has_tables(conn: AsyncConnection, schema: str) -> bool:
    count = await conn.scalar(
        text("SELECT count(*) FROM pg_tables WHERE schemaname = :s AND tablename <> :v"),
        {"s": schema, "v": VERSION_TABLE},
    )
    return bool(count)


async def _lock(conn: AsyncConnection, migrations: MigrationSet) -> None:
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:n))"),
        {"n": f"voicebus.migrate.{migrations.schema}"},
    )
    # A validated identifier: safe in DDL.
    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {migrations.schema}"))


def _run(conn: Connection, /, migrations: MigrationSet, action: str, **kwargs: Any) -> None:
    cfg = config(migrations, conn)
    if action == "upgrade":
        command.upgrade(cfg, kwargs["target"])
    else:
        command.revision(cfg, message=kwargs["message"], autogenerate=True, rev_id=kwargs["rev"])


def _engine(url: str, migrations: MigrationSet) -> AsyncEngine:
    return dbkit.create_engine(
        url, migrations.schema, application_name=f"migrate/{migrations.service}", pool_size=1
    )


async def upgrade(url: str, migrations: MigrationSet, target: str = "head") -> Outcome:
    """Bring ``migrations.schema`` to ``target``, creating the schema if needed.

    A schema with an earlier release's tables and no version table is adopted:
    the first revision checks that each table and column it expects is there,
    creates what is missing, and records itself.

    Raises:
        MigrationError: the schema cannot be adopted or a revision refused it.
        SQLAlchemyError: the database failed a statement or the connection.
        In either case nothing of that upgrade is kept.
    """
    engine = _engine(url, migrations)
    try:
        async with engine.begin() as conn:
            await _lock(conn, migrations)
            before = await current(conn, migrations)
            adopted = before is None and await _has_tables(conn, migrations.schema)
            if adopted:
                log.warning("adopting an earlier release's tables", extra=_fields(migrations))
            await conn.run_sync(_run, migrations, "upgrade", target=target)
            after = await current(conn, migrations)
    finally:
        await engine.dispose()
    if after != before:
        log.info("schema migrated", extra={**_fields(migrations), "revision": after or "none"})
    return Outcome(migrations.service, before, after, adopted)


async def check(url: str, migrations: MigrationSet) -> str | None:
    """The schema's revision if it is at head.

    Raises:
        MigrationError: it is not at head.
    """
    engine = _engine(url, migrations)
    try:
        await require_head(engine, migrations)
        async with engine.connect() as conn:
            return await current(conn, migrations)
    finally:
        await engine.dispose()


async def revision(url: str, migrations: MigrationSet, message: str) -> str:
    """Write a new revision autogenerated from the difference between the tables and the schema.

    The schema is first brought to head (a revision is always written against it);
    the new file lands in the service's ``versions/`` directory; read and edit it
    before committing it.

    Returns:
        The new revision's id (the next four-digit number).
    """
    await upgrade(url, migrations)
    numbers = [int(h) for h in heads(migrations) if h.isdigit()]
    rev = f"{max(numbers, default=0) + 1:04d}"
    engine = _engine(url, migrations)
    try:
        async with engine.begin() as conn:
            await _lock(conn, migrations)
            await conn.run_sync(_run, migrations, "revision", message=message, rev=rev)
    finally:
        await engine.dispose()
    return rev


def _fields(migrations: MigrationSet) -> dict[str, str]:
    return {"service": migrations.service, "schema": migrations.schema}


__all__ = [
    "MigrationError",
    "Outcome",
    "check",
    "config",
    "current",
    "heads",
    "require_head",
    "revision",
    "upgrade",
]
