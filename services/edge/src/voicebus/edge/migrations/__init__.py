"""The edge schema's Alembic migrations (``env.py``, ``versions/``).

Apply with ``voicebus migrate --service edge``; add a revision after changing the
tables with ``voicebus migrate --service edge --revision -m "what changed"``.
"""

from __future__ import annotations

from voicebus.runtime.migrations.spec import MigrationSet

MIGRATIONS = MigrationSet(service="edge", schema="edge", package=__name__)
"""Registered as the entry point ``voicebus.migrations:edge``."""
