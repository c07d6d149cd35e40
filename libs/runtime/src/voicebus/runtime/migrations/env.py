"""What each service's ``env.py`` runs: online migrations on the runner's connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData

from voicebus.runtime.migrations.spec import VERSION_TABLE, MigrationError, MigrationSet


def _include_name(name: str | None, type_: str, _parent: object) -> bool:
    # The version table lives in the service's schema but in no metadata.
    return not (type_ == "table" and name == VERSION_TABLE)


def run(target_metadata: MetaData) -> None:
    """Run the revisions Alembic selected, comparing against ``target_metadata``.

    Only the runner's connection is used (its ``search_path`` is the service's
    schema, so unqualified tables land there); offline SQL scripts are not offered.

    Raises:
        MigrationError: Alembic was started some other way than through the runner.
    """
    cfg = context.config
    connection = cfg.attributes.get("connection")
    migrations = cfg.attributes.get("migration_set")
    if context.is_offline_mode() or connection is None or not isinstance(migrations, MigrationSet):
        raise MigrationError("run migrations with `voicebus migrate`, not the alembic command")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=migrations.schema,
        include_name=_include_name,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
