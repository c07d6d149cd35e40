"""PostgreSQL through SQLAlchemy's asyncio engine and asyncpg: one schema per owning service."""

from __future__ import annotations

import re
from typing import Final

from sqlalchemy import MetaData, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from voicebus.runtime.errors import DatabaseError

__all__ = ["asyncpg_url", "create_all", "create_engine", "ensure_schema", "ping", "schema_name"]

# Lower-case only, so the name never needs quoting in search_path or DDL.
_SCHEMA: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DRIVERS: Final = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})


def schema_name(schema: str) -> str:
    """Return ``schema`` if it is a plain lower-case identifier, else raise ``DatabaseError``."""
    if not isinstance(schema, str) or not _SCHEMA.fullmatch(schema):
        raise DatabaseError(
            f"invalid schema name {schema!r}: use 1-63 characters of a-z, 0-9 and '_', "
            "not starting with a digit"
        )
    return schema


def asyncpg_url(url: str) -> URL:
    """Parse a ``postgresql://`` or ``postgres://`` URL into one that uses asyncpg.

    libpq's ``sslmode`` query option becomes asyncpg's ``ssl``.

    Raises:
        DatabaseError: not a PostgreSQL URL (the message never includes the URL,
            which may hold a password).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError("database URL cannot be parsed") from exc
    if parsed.drivername not in _DRIVERS:
        raise DatabaseError(
            f"database URL scheme {parsed.drivername!r} is not supported; use postgresql://"
        )
    query = dict(parsed.query)
    if "sslmode" in query:
        query["ssl"] = query.pop("sslmode")
    return parsed.set(drivername="postgresql+asyncpg", query=query)


def create_engine(
    url: str,
    schema: str,
    *,
    application_name: str | None = None,
    pool_size: int = 5,
) -> AsyncEngine:
    """An engine whose connections use ``schema`` as their ``search_path``.

    Creating the engine does not connect. Unqualified table names in queries
    and in ``create_all`` resolve to ``schema``; call :func:`ensure_schema` first.

    Args:
        url: ``postgresql://`` or ``postgres://`` URL (asyncpg is used either way).
        schema: the owning service's schema, e.g. ``"audit"``.
        application_name: shown in ``pg_stat_activity``, e.g. ``audit/<instance>``.
        pool_size: connections kept open.
    """
    server_settings = {"search_path": schema_name(schema)}
    if application_name:
        server_settings["application_name"] = application_name[:63]
    return create_async_engine(
        asyncpg_url(url),
        # Errors never carry the statement's parameters (phone numbers, transcripts).
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=pool_size,
        connect_args={"server_settings": server_settings},
    )


async def ensure_schema(engine: AsyncEngine, schema: str) -> None:
    """``CREATE SCHEMA IF NOT EXISTS <schema>``; safe to run from many instances at once."""
    name = schema_name(schema)
    async with engine.begin() as conn:
        # Two sessions creating the same schema at once can still collide on the
        # catalog's unique index; an advisory lock serialises them.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})
        # The name is a validated identifier: safe to place in DDL, which takes no parameters.
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {name}"))


async def create_all(engine: AsyncEngine, metadata: MetaData) -> None:
    """Create the tables of ``metadata`` (e.g. ``SQLModel.metadata``) that do not exist yet.

    Safe to run from many instances at once: they take turns on an advisory lock.
    """
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('voicebus.create_all'))"))
        await conn.run_sync(metadata.create_all)


async def ping(engine: AsyncEngine) -> bool:
    """True if a connection can run ``SELECT 1``."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True
