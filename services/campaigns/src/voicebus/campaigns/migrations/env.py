"""Alembic environment of the campaigns schema: its tables are the target."""

from voicebus.campaigns.models import METADATA
from voicebus.runtime.migrations import env

env.run(METADATA)
