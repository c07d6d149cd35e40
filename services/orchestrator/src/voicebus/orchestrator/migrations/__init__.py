"""The orchestrator schema's Alembic migrations (``env.py``, ``versions/``).

Apply with ``voicebus migrate --service orchestrator``; add a revision after changing the
tables with ``voicebus migrate --service orchestrator --revision -m "what changed"``.
"""

from __future__ import annotations

from voicebus.runtime.migrations.spec import MigrationSet

MIGRATIONS = MigrationSet(service="orchestrator", schema="orchestrator", package=__name__)
"""Registered as the entry point ``voicebus.migrations:orchestrator``."""
