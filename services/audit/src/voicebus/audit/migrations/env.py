"""Alembic environment of the audit schema: its two tables are the target."""

from voicebus.audit.migrations.metadata import target_metadata
from voicebus.runtime.migrations import env

env.run(target_metadata())
