"""The audit schema's Alembic migrations (``env.py``, ``versions/``).

Apply with ``voicebus migrate --service audit``; add a revision after changing the
tables with ``voicebus migrate --service audit --revision -m "what changed"``.
"""

from __future__ import annotations

from voicebus.runtime.migrations.spec import MigrationSet

MIGRATIONS = MigrationSet(service="audit", schema="audit", package=__name__)
"""Registered as the entry point ``voicebus.migrations:audit``."""
