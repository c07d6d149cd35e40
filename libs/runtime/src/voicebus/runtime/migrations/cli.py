"""The ``migrate`` command: every installed service's schema to head, or a check.

``voicebus migrate`` (the development command) and ``voicebus-migrate`` (in the
service images, for the compose one-shot service and the Kubernetes Job) both
run :func:`run`. The database comes from ``VB_DATABASE_URL``, the setting the
services read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import ClassVar

from pydantic_settings import SettingsConfigDict
from sqlalchemy.exc import SQLAlchemyError

from voicebus.runtime.errors import VoicebusError
from voicebus.runtime.logs import configure_logging
from voicebus.runtime.migrations import runner, spec
from voicebus.runtime.settings import ServiceSettings

Emit = Callable[[str], None]


class MigrateSettings(ServiceSettings):
    """The command's settings: the shared ones (``VB_DATABASE_URL``, ``VB_LOG_FORMAT`` ...)."""

    model_config = SettingsConfigDict(env_prefix="VB_MIGRATE_")
    service_name: ClassVar[str] = "migrate"


async def run(
    database_url: str,
    services: Sequence[str] = (),
    *,
    check: bool = False,
    revision_message: str | None = None,
    emit: Emit = print,
) -> int:
    """Migrate (or check, or add a revision to) the named services' schemas; all by default.

    Each outcome is one line through ``emit``; a failure is one line naming the
    service and the reason. Services are handled one after the other and the
    first failure stops the run.

    Returns:
        The exit status: 0 when every schema is (now) at head, 1 otherwise.
    """
    try:
        selected = spec.select(spec.discover(), list(services))
        if revision_message is not None and len(selected) != 1:
            raise spec.MigrationError("--revision needs exactly one --service")
    except VoicebusError as exc:
        emit(f"error: {exc}")
        return 1
    if not selected:
        emit("no installed service has migrations")
        return 0
    for migrations in selected:
        try:
            emit(await _one(database_url, migrations, check, revision_message))
        except (VoicebusError, SQLAlchemyError, OSError) as exc:
            emit(f"{migrations.service}: error: {_reason(exc)}")
            return 1
    return 0


async def _one(url: str, migrations: spec.MigrationSet, check: bool, message: str | None) -> str:
    name = migrations.service
    if message is not None:
        rev = await runner.revision(url, migrations, message)
        return f"{name}: wrote revision {rev} into {migrations.script_location}/versions"
    if check:
        return f"{name}: at head {await runner.check(url, migrations)}"
    outcome = await runner.upgrade(url, migrations)
    if outcome.before == outcome.after:
        return f"{name}: already at head {outcome.after}"
    adopted = " (adopted the tables of an earlier release)" if outcome.adopted else ""
    return f"{name}: {outcome.before or 'empty'} -> {outcome.after}{adopted}"


def _reason(exc: BaseException) -> str:
    # A driver error's text may carry the URL's host but never its password.
    if isinstance(exc, SQLAlchemyError):
        cause = getattr(exc, "orig", None) or exc
        return f"database error ({type(cause).__name__}): {str(cause)[:300]}"
    return str(exc) or type(exc).__name__


def parser() -> argparse.ArgumentParser:
    """The arguments of ``voicebus-migrate``."""
    p = argparse.ArgumentParser(
        prog="voicebus-migrate",
        description="Bring the services' database schemas to this release's head "
        "(database from VB_DATABASE_URL).",
    )
    p.add_argument("--service", "-s", action="append", default=[], help="only this service")
    p.add_argument("--check", action="store_true", help="only check every schema is at head")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``voicebus-migrate``."""
    args = parser().parse_args(argv)
    settings = MigrateSettings()
    configure_logging(settings)
    url = settings.database_url
    if url is None:
        print("error: set VB_DATABASE_URL", file=sys.stderr)
        raise SystemExit(2)

    def emit(line: str) -> None:
        print(line, file=sys.stderr if "error:" in line else sys.stdout)

    status = asyncio.run(run(url.get_secret_value(), args.service, check=args.check, emit=emit))
    raise SystemExit(status)
