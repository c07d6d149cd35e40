"""What a service's migrations are, and how the command finds them."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from importlib.resources import files
from typing import Final

from voicebus.runtime.db import schema_name
from voicebus.runtime.errors import ConfigurationError

ENTRY_POINT_GROUP: Final = "voicebus.migrations"
"""Entry-point group under which each service registers its :class:`MigrationSet`."""

VERSION_TABLE: Final = "alembic_version"
"""Alembic's version table, kept inside each service's own schema."""


class MigrationError(ConfigurationError):
    """A schema cannot be migrated, or is not at the revision this release needs."""


@dataclass(frozen=True)
class MigrationSet:
    """One service's migrations.

    Attributes:
        service: the service's name, as ``--service`` takes it (``"audit"``).
        schema: the schema it owns; its version table lives there too.
        package: the package holding ``env.py`` and ``versions/``.
    """

    service: str
    schema: str
    package: str

    def __post_init__(self) -> None:
        schema_name(self.schema)

    @property
    def script_location(self) -> str:
        """The directory of ``env.py`` and ``versions/`` (inside the installed package)."""
        return str(files(self.package))

    @property
    def command(self) -> str:
        """The command that brings this schema to head, for error messages."""
        return f"voicebus migrate --service {self.service}"


def discover() -> dict[str, MigrationSet]:
    """Every installed service's migrations, by service name (sorted).

    Raises:
        MigrationError: an entry point does not name a :class:`MigrationSet`.
    """
    found: dict[str, MigrationSet] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        value = entry.load()
        if not isinstance(value, MigrationSet):
            raise MigrationError(f"entry point {entry.name!r} is not a MigrationSet")
        found[value.service] = value
    return dict(sorted(found.items()))


def select(available: dict[str, MigrationSet], names: list[str]) -> list[MigrationSet]:
    """The sets named (all when ``names`` is empty), in a stable order.

    Raises:
        MigrationError: a name is not an installed service with migrations.
    """
    if not names:
        return list(available.values())
    unknown = sorted(set(names) - set(available))
    if unknown:
        known = ", ".join(available) or "none"
        raise MigrationError(f"no migrations for service {unknown[0]!r} (installed: {known})")
    return [available[name] for name in sorted(set(names))]
