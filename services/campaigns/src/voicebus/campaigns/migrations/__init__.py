"""The campaigns schema's Alembic migrations (``env.py``, ``versions/``).

Apply with ``voicebus migrate --service campaigns``; add a revision after changing the
tables with ``voicebus migrate --service campaigns --revision -m "what changed"``.
"""

from __future__ import annotations

from voicebus.runtime.migrations.spec import MigrationSet

MIGRATIONS = MigrationSet(service="campaigns", schema="campaigns", package=__name__)
"""Registered as the entry point ``voicebus.migrations:campaigns``."""
