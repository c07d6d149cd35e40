"""Alembic migrations of every service schema, on a real PostgreSQL.

An empty database and a database from the release before migrations (its tables as
``previous_release.sql`` holds them, rows included, no version table) both reach head;
the migrated schemas match the services' table modules exactly (so a table or column
added without a revision fails here); concurrent runs are safe; a schema that is not
an earlier release's is refused; and a service refuses to start on an unmigrated
schema, naming the command to run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Connection, Integer, MetaData, Table
from typer.testing import CliRunner

from voicebus.audit.app import build as build_audit
from voicebus.audit.migrations.metadata import target_metadata as audit_tables
from voicebus.audit.settings import AuditSettings
from voicebus.campaigns.models import METADATA as CAMPAIGNS_TABLES
from voicebus.devkit.cli import app as voicebus_cli
from voicebus.edge.migrations.metadata import target_metadata as edge_tables
from voicebus.orchestrator.tables import METADATA as ORCHESTRATOR_TABLES
from voicebus.runtime import db as dbkit
from voicebus.runtime.migrations import env, runner, spec
from voicebus.runtime.migrations.spec import MigrationError, MigrationSet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PREVIOUS_RELEASE = Path(__file__).with_name("previous_release.sql")

TABLES: dict[str, MetaData] = {
    "audit": audit_tables(),
    "campaigns": CAMPAIGNS_TABLES,
    "edge": edge_tables(),
    "orchestrator": ORCHESTRATOR_TABLES,
}
"""What each service's code expects its schema to hold."""

ROWS = {
    "audit": "INSERT INTO audit.calls (tenant_id, call_id, status, updated_at) "
    "VALUES ('acme', 'c1', 'ended', now())",
    "campaigns": "INSERT INTO campaigns.dnc (tenant_id, scope, phone, created_at) "
    "VALUES ('acme', '', '+15550100', now())",
    "edge": "INSERT INTO edge.tenants (tenant_id, name, disabled, created_at) "
    "VALUES ('acme', 'Acme', false, now())",
    "orchestrator": "INSERT INTO orchestrator.caller_memory (tenant_id, number, profile, "
    "updated_at) VALUES ('acme', '+15550100', '{}', now())",
}
"""One row per schema, written by the previous release, that must survive the upgrade."""


def _migrations() -> dict[str, MigrationSet]:
    return spec.discover()


async def _diff(url: str, migrations: MigrationSet, metadata: MetaData) -> list[Any]:
    engine = dbkit.create_engine(url, migrations.schema)

    def compare(conn: Connection) -> list[Any]:
        opts = {"compare_type": True, "include_name": env._include_name}
        return list(compare_metadata(MigrationContext.configure(conn, opts=opts), metadata))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def _sql(url: str, query: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


@pytest.mark.unit
def test_every_service_that_owns_tables_ships_migrations() -> None:
    assert set(_migrations()) == set(TABLES)
    assert all(len(runner.heads(m)) == 1 for m in _migrations().values())  # no branch left


@pytest.mark.unit
def test_an_unknown_service_is_named_in_the_error() -> None:
    with pytest.raises(MigrationError, match="'gateway'"):
        spec.select(_migrations(), ["audit", "gateway"])
    assert [m.service for m in spec.select(_migrations(), [])] == sorted(TABLES)


async def test_an_empty_database_reaches_head_and_matches_the_table_modules(
    blank_database_url: str,
) -> None:
    for name, migrations in _migrations().items():
        outcome = await runner.upgrade(blank_database_url, migrations)
        assert (outcome.before, outcome.adopted) == (None, False)
        assert (outcome.after,) == runner.heads(migrations)
        assert await _diff(blank_database_url, migrations, TABLES[name]) == []
        assert await runner.check(blank_database_url, migrations) == outcome.after
    versions = await _sql(
        blank_database_url,
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version'",
    )
    assert sorted(r["table_schema"] for r in versions) == sorted(TABLES)
    # A table the code has but no revision creates is caught.
    drifted = MetaData()
    for table in TABLES["audit"].sorted_tables:
        table.to_metadata(drifted)
    Table("retention_rules", drifted, Column("id", Integer, primary_key=True))
    diff = await _diff(blank_database_url, _migrations()["audit"], drifted)
    assert [d[0] for d in diff] == ["add_table"]


async def test_a_previous_release_database_is_adopted_with_its_rows(
    blank_database_url: str,
) -> None:
    conn = await asyncpg.connect(blank_database_url)
    try:
        await conn.execute(PREVIOUS_RELEASE.read_text())
        for statement in ROWS.values():
            await conn.execute(statement)
        # A campaigns schema from before post-call analysis lacks what the old start-up
        # ALTERs added: adoption adds it too.
        await conn.execute("ALTER TABLE campaigns.attempts DROP COLUMN disposition")
    finally:
        await conn.close()
    migrations = _migrations()["audit"]
    with pytest.raises(MigrationError, match="voicebus migrate --service audit"):
        await runner.check(blank_database_url, migrations)

    for name, migrations in _migrations().items():
        outcome = await runner.upgrade(blank_database_url, migrations)
        assert (outcome.before, outcome.adopted) == (None, True)
        assert (outcome.after,) == runner.heads(migrations)
        assert await _diff(blank_database_url, migrations, TABLES[name]) == []
    counts = await _sql(
        blank_database_url,
        "SELECT (SELECT count(*) FROM audit.calls) + (SELECT count(*) FROM campaigns.dnc) "
        "+ (SELECT count(*) FROM edge.tenants) + (SELECT count(*) FROM orchestrator.caller_memory)"
        " AS n",
    )
    assert counts[0]["n"] == len(ROWS)


async def test_two_concurrent_runs_migrate_once(blank_database_url: str) -> None:
    migrations = _migrations()["campaigns"]
    outcomes = await asyncio.gather(
        runner.upgrade(blank_database_url, migrations),
        runner.upgrade(blank_database_url, migrations),
    )
    (head,) = runner.heads(migrations)
    assert sorted(str(o.before) for o in outcomes) == sorted([head, "None"])
    assert {o.after for o in outcomes} == {head}


async def test_a_schema_of_foreign_tables_is_not_adopted(blank_database_url: str) -> None:
    conn = await asyncpg.connect(blank_database_url)
    try:
        await conn.execute("CREATE SCHEMA orchestrator")
        await conn.execute("CREATE TABLE orchestrator.resources (kind text PRIMARY KEY)")
    finally:
        await conn.close()
    migrations = _migrations()["orchestrator"]
    with pytest.raises(MigrationError, match="'resources' exists but lacks column"):
        await runner.upgrade(blank_database_url, migrations)
    # Nothing was kept: no version table, no other table.
    tables = await _sql(
        blank_database_url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'orchestrator'",
    )
    assert [r["tablename"] for r in tables] == ["resources"]


async def test_a_service_refuses_to_start_on_an_unmigrated_schema(
    blank_database_url: str, embedded_nats_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = AuditSettings(
        nats_url=embedded_nats_factory().url,
        database_url=blank_database_url,
        instance_id="unmigrated",
    )
    service, _ = build_audit(settings)
    with pytest.raises(MigrationError, match=r"run `voicebus migrate --service audit`"):
        await service.start()
    assert not service.ready
    refusals = [r for r in caplog.records if r.getMessage() == "database schema not migrated"]
    assert [getattr(r, "command", None) for r in refusals] == ["voicebus migrate --service audit"]


def test_the_migrate_command_checks_then_migrates(blank_database_url: str) -> None:
    cli = CliRunner()
    env = {"VB_DATABASE_URL": blank_database_url}
    before = cli.invoke(voicebus_cli, ["migrate", "--check", "-s", "edge"], env=env)
    assert before.exit_code == 1
    assert "voicebus migrate --service edge" in before.output
    done = cli.invoke(voicebus_cli, ["migrate"], env=env)
    assert done.exit_code == 0, done.output
    assert [line.split(":")[0] for line in done.output.splitlines()] == sorted(TABLES)
    heads = {name: runner.heads(m)[0] for name, m in _migrations().items()}
    assert f"edge: empty -> {heads['edge']}" in done.output
    after = cli.invoke(voicebus_cli, ["migrate", "--check"], env=env)
    assert after.exit_code == 0, after.output
    assert f"orchestrator: at head {heads['orchestrator']}" in after.output
    unknown = cli.invoke(voicebus_cli, ["migrate", "-s", "gateway"], env=env)
    assert unknown.exit_code == 1
    assert "no migrations for service 'gateway'" in unknown.output
