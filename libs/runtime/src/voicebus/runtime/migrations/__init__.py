"""Alembic migrations per service schema: one version table per schema, a shared runner.

Each service that owns tables keeps its migrations next to its code
(``voicebus/<service>/migrations/`` with ``env.py`` and ``versions/``) and
describes them with a :class:`MigrationSet` registered under the entry-point
group ``voicebus.migrations``, so the ``migrate`` command finds every installed
service without importing any of them by name.

- ``spec``: :class:`MigrationSet`, :func:`discover`, :class:`MigrationError`.
- ``runner``: :func:`upgrade`, :func:`current`, :func:`require_head`, :func:`revision`.
- ``env``: what a service's ``env.py`` calls.
- ``baseline``: the idempotent first revision that also adopts an earlier release's tables.
- ``cli``: the ``migrate`` command (``voicebus migrate``, ``voicebus-migrate`` in images).
"""
