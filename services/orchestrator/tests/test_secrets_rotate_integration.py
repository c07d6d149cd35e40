"""Tool secrets re-sealed with the newest key, on real PostgreSQL (``voicebus keys rotate``)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from voicebus.orchestrator.library import ToolLibrary
from voicebus.orchestrator.secret_box import SecretBox, SecretsUnreadableError, fernet_keys
from voicebus.orchestrator.tables import RESOURCE_VERSIONS
from voicebus.orchestrator.versions import SqlVersions
from voicebus.runtime import db as dbkit

pytestmark = pytest.mark.integration

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
RAW = {"name": "lookup", "description": "d", "url": "https://api.example/x",
       "secret_headers": {"Authorization": "Bearer s3cr3t"}}  # fmt: skip


def _library(store: SqlVersions, keys: str) -> ToolLibrary:
    return ToolLibrary(store, SecretBox(fernet_keys(keys)))


async def test_every_version_is_resealed_and_the_old_key_can_go(database_url: str) -> None:
    engine = dbkit.create_engine(database_url, "orchestrator")
    try:
        store = SqlVersions(engine)
        old = _library(store, OLD)
        await old.create("acme", RAW)
        await old.update("acme", "lookup", {**RAW, "timeout_s": 2})  # two sealed versions
        await old.create("globex", {**RAW, "secret_headers": {"X-Key": "other"}})

        new_only = _library(store, NEW)
        with pytest.raises(SecretsUnreadableError):
            await new_only.runnable("acme", "lookup")
        both = _library(store, f"{NEW},{OLD}")
        assert (await both.rotate_secrets(dry_run=True)) == (3, 0)
        assert (await both.rotate_secrets()) == (3, 0)

        async with engine.connect() as conn:
            tokens = (await conn.execute(select(RESOURCE_VERSIONS.c.secret))).scalars().all()
        assert len(tokens) == 3
        for token in tokens:
            Fernet(NEW.encode()).decrypt(token)  # raises if any was left under the old key
        runnable = await new_only.runnable("acme", "lookup")
        assert runnable is not None
        assert runnable[1]["Authorization"] == "Bearer s3cr3t"
        assert (await new_only.rotate_secrets()) == (3, 0)
        assert (await _library(store, OLD).rotate_secrets()) == (0, 3)
    finally:
        await engine.dispose()
