"""Database schemas for development and tests: what ``voicebus migrate`` does, in process."""

from __future__ import annotations


async def migrate_all(url: str) -> None:
    """Bring every installed service's schema in database ``url`` to head.

    Services refuse to start on a schema that is not at head: whatever starts
    them on a new database (the dev stack, a test's stack) calls this first.

    Raises:
        MigrationError: a schema cannot be migrated.
    """
    from voicebus.runtime.migrations import runner, spec

    for migrations in spec.discover().values():
        await runner.upgrade(url, migrations)
