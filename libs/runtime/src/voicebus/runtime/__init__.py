"""voicebus runtime: what every service needs, written once.

Modules (import them directly; this package imports nothing, so reading
settings does not pull in the broker, the database driver or uvicorn):

- ``settings``: ``ServiceSettings``, the base of every service's settings.
- ``bus``: ``connect`` (raw nats-py client) and ``provision`` (streams, KV).
- ``provision``: contract specs mapped to nats-py configs; ``jstream`` for subscribers.
- ``broker``: the FastStream ``NatsBroker`` with Prometheus and OpenTelemetry.
- ``service``: ``Service``, the lifecycle, health, readiness and metrics kit.
- ``telemetry``: tracer provider and trace context in NATS headers.
- ``logs``: JSON or console logging with PII redaction.
- ``db``: asyncpg engine per schema, ``ensure_schema``.
- ``migrations``: Alembic per service schema: the runner and the ``migrate`` command.
- ``errors``: ``VoicebusError`` and ``ProviderError.from_status``.
"""
