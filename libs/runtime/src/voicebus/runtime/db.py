"""PostgreSQL through SQLAlchemy's asyncio engine and asyncpg: one schema per owning service."""

from __future__ import annotations

import re
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from voicebus.runtime.errors import DatabaseError

__all__ = ["asyncpg_url", "create_engine", "ensure_schema", "ping", "schema_name"]

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
    connect_timeout_s: float = 5.0,
    statement_timeout_s: float = 30.0,
    pool_timeout_s: float = 10.0,
) -> AsyncEngine:
    """An engine whose connections use ``schema`` as their ``search_path``.

    Creating the engine does not connect. Unqualified table names in queries
    resolve to ``schema``, where the service's migrations created its tables.

    Args:
        url: ``postgresql://`` or ``postgres://`` URL (asyncpg is used either way).
        schema: the owning service's schema, e.g. ``"audit"``.
        application_name: shown in ``pg_stat_activity``, e.g. ``audit/<instance>``.
        pool_size: connections kept open.
        connect_timeout_s: longest wait for a new connection (asyncpg ``timeout``).
        statement_timeout_s: longest one statement may run before asyncpg cancels it
            (``command_timeout``): a hung database fails a query instead of holding it.
        pool_timeout_s: longest wait for a free connection from the pool.
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
        pool_timeout=pool_timeout_s,
        connect_args={
            "server_settings": server_settings,
            "timeout": connect_timeout_s,
            "command_timeout": statement_timeout_s,
        },
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


async def ping(engine: AsyncEngine) -> bool:
    """True if a connection can run ``SELECT 1``."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True
