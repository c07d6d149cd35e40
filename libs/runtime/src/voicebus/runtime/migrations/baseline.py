"""The first revision of every schema: create the tables, or adopt an earlier release's.

Before migrations existed, each service created its tables at start
(``create_all``, then a few idempotent ``ALTER TABLE ... IF NOT EXISTS``). The
first revision therefore creates only what is missing and then checks that
every table holds every column it expects, so a schema made by that earlier
release is taken over with its rows, and a schema that is something else is
refused (the runner's transaction rolls back) instead of being marked migrated.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, MetaData, inspect, text

from voicebus.runtime.migrations.spec import MigrationError


def apply(conn: Connection, metadata: MetaData, statements: Sequence[str] = ()) -> None:
    """Create the missing tables and indexes of ``metadata``, run ``statements``, verify.

    Args:
        conn: the migration's connection (``op.get_bind()``).
        metadata: a frozen copy of the tables as the baseline defines them.
        statements: idempotent SQL that brings an earlier release's tables up to
            the baseline (``ADD COLUMN IF NOT EXISTS`` ...), run after creation.

    Raises:
        MigrationError: a table lacks a column the baseline defines.
    """
    metadata.create_all(conn, checkfirst=True)
    for statement in statements:
        conn.execute(text(statement))
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        found = {column["name"] for column in inspector.get_columns(table.name)}
        missing = sorted(set(table.columns.keys()) - found)
        if missing:
            raise MigrationError(
                f"table {table.name!r} exists but lacks column(s) {', '.join(missing)}: "
                "it was not made by an earlier voicebus release; not adopting it"
            )
