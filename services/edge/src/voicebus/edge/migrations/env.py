"""Alembic environment of the edge's schema: every table module's tables are the target."""

from voicebus.edge.migrations.metadata import target_metadata
from voicebus.runtime.migrations import env

env.run(target_metadata())
