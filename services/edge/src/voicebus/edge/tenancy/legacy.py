"""Tenancy tables kept by a gateway from before the edge existed: moved into the edge's schema.

The gateway used to own tenants, API keys and provider accounts in schema ``gateway``.
On its first start the edge moves those tables into its own schema as they are
(``ALTER TABLE ... SET SCHEMA``: rows, indexes and foreign keys go along), so no
tenant, key or stored credential is lost. The credentials stay encrypted with the
same key: set ``VB_EDGE_CREDENTIALS_KEY`` to the former ``VB_GATEWAY_CREDENTIALS_KEY``.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.edge.tenancy.tables import METADATA
from voicebus.runtime import db as dbkit

LEGACY_SCHEMA: Final = "gateway"


async def adopt_legacy_tables(engine: AsyncEngine, schema: str) -> list[str]:
    """Move each tenancy table that exists in ``gateway`` but not yet in ``schema``.

    Safe to run from many instances at once (an advisory lock) and on every start
    (a table already in ``schema`` is left alone, and so is its old copy).

    Returns:
        The names of the tables moved.
    """
    target = dbkit.schema_name(schema)
    moved: list[str] = []
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('voicebus.edge.adopt'))"))
        for table in METADATA.sorted_tables:  # referenced tables (tenants) first
            old = await conn.scalar(
                text("SELECT to_regclass(:name)"), {"name": f"{LEGACY_SCHEMA}.{table.name}"}
            )
            new = await conn.scalar(
                text("SELECT to_regclass(:name)"), {"name": f"{target}.{table.name}"}
            )
            if old is None or new is not None:
                continue
            # Names come from our own metadata and a validated schema: safe in DDL.
            await conn.execute(
                text(f"ALTER TABLE {LEGACY_SCHEMA}.{table.name} SET SCHEMA {target}")
            )
            moved.append(table.name)
    return moved
