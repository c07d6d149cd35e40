"""Alembic environment of the orchestrator's schema: its tables are the target."""

from voicebus.orchestrator.tables import METADATA
from voicebus.runtime.migrations import env

env.run(METADATA)
