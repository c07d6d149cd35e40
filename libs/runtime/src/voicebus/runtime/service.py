"""The service kit: one object that owns a service's connections and lifecycle.

A service's ``app.py`` wires itself in a few lines::

    service = Service(settings, db_schema="audit", migrations=MIGRATIONS)

    @service.broker.subscriber(...)
    async def handle(event: CallEnded) -> None: ...

    service.on_connected(open_store)   # before handlers can run
    service.on_startup(warm_cache)     # after the broker started
    service.add_readiness_check("cache", cache_ready)
    app = service.asgi()
    if __name__ == "__main__":
        service.run(app)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import cached_property
from typing import Any, TypeVar, overload

from faststream import FastStream
from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from voicebus.contracts.streams import STREAMS
from voicebus.runtime import consumers, http, readiness
from voicebus.runtime import db as dbkit
from voicebus.runtime.advisories import AdvisoryRelay
from voicebus.runtime.broker import build_broker, faststream_app, stop_broker, undeclare_streams
from voicebus.runtime.bus import connect, drain
from voicebus.runtime.errors import VoicebusError
from voicebus.runtime.metrics import SERVICE_INFO, SERVICE_READY
from voicebus.runtime.migrations.spec import MigrationError, MigrationSet
from voicebus.runtime.provision import kv_buckets, provision, streams_with_caps, used_by
from voicebus.runtime.readiness import ReadinessCheck
from voicebus.runtime.rpc import tenancy
from voicebus.runtime.rpc.tenancy import TenantGuard
from voicebus.runtime.settings import ServiceSettings
from voicebus.runtime.telemetry import create_tracer_provider, export_spans

__all__ = ["Hook", "ReadinessCheck", "Service"]

log = logging.getLogger(__name__)

Hook = Callable[["Service"], Awaitable[None]]
"""A start-up or shutdown hook; it receives the running :class:`Service`."""
AppT = TypeVar("AppT", bound=Starlette)


class Service:
    """Connections, lifecycle, health and metrics of one service process.

    Construct it at import time (nothing connects until start); declare
    subscribers on :attr:`broker`; then serve :meth:`asgi` with :meth:`run`.

    Start order: NATS → the streams/KV it uses → database schema → connected hooks →
    durable consumers (created or updated) → broker → dead-letter relay →
    start-up hooks → ready. Shutdown: not ready → shutdown hooks →
    broker stop → NATS drain → database dispose.

    ``/metrics`` serves the process registry (``prometheus_client.REGISTRY``):
    FastStream's ``faststream_*`` metrics, ``voicebus_service_info`` and
    whatever the service registers there.

    Args:
        settings: the service's settings (a ``ServiceSettings`` subclass).
        db_schema: schema this service owns; an engine is created only when
            this and ``VB_DATABASE_URL`` are both set.
        migrations: the schema's Alembic migrations: at start the schema must be
            at their head (``voicebus migrate`` puts it there), or the start fails
            with an error naming that command. Without them the schema is only
            created if missing.
        hot_path: the service carries per-call traffic: FastStream gets no
            logger, since its per-message logging halves throughput.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        db_schema: str | None = None,
        migrations: MigrationSet | None = None,
        hot_path: bool = False,
    ) -> None:
        self.settings = settings
        self.name = type(settings).service_name
        self.db_schema = dbkit.schema_name(db_schema) if db_schema else None
        if migrations is not None and migrations.schema != self.db_schema:
            raise ValueError(f"migrations are for schema {migrations.schema!r}, not {db_schema!r}")
        self.migrations = migrations
        self.registry: CollectorRegistry = REGISTRY
        self.tracer_provider = create_tracer_provider(settings)
        self.broker = build_broker(
            settings, hot_path=hot_path, tracer_provider=self.tracer_provider, registry=REGISTRY
        )
        # Tenant-scoped responders on this broker answer only what the edge signed.
        tenancy.attach(self.broker, TenantGuard.from_key(settings.rpc_tenant_public_key))
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._db: AsyncEngine | None = None
        self._connected_hooks: list[Hook] = []
        self._startup_hooks: list[Hook] = []
        self._shutdown_hooks: list[Hook] = []
        self._checks: dict[str, ReadinessCheck] = {}
        self._provisioned = False
        self._broker_starting = False
        self._hooks_started = False
        self._ready = False
        self._exporting = False
        self._relay: AdvisoryRelay | None = None

    # -- wiring -------------------------------------------------------------

    def on_connected(self, hook: Hook) -> Hook:
        """Run ``hook(service)`` once NATS, JetStream and the database are up, before
        the broker starts consuming.

        Open here what handlers need (KV buckets, tables, caches): a subscriber
        may receive its first message as soon as the broker starts, before any
        :meth:`on_startup` hook has run. Usable as a decorator; registration
        order; one that raises aborts the start.
        """
        self._connected_hooks.append(hook)
        return hook

    def on_startup(self, hook: Hook) -> Hook:
        """Run ``hook(service)`` after the broker started, just before the service is ready.

        Usable as a decorator. Hooks run in registration order; one that raises
        aborts the start.
        """
        self._startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        """Run ``hook(service)`` on shutdown, before the broker stops (reverse order).

        Usable as a decorator. A hook that raises is logged; the others still run.
        """
        self._shutdown_hooks.append(hook)
        return hook

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """Add a condition ``/readyz`` requires, reported under ``name`` when it fails."""
        if name in self._checks or name in readiness.BUILTIN_CHECKS:
            raise VoicebusError(f"readiness check {name!r} is already registered")
        self._checks[name] = check

    # -- what start-up provides ---------------------------------------------

    @property
    def nc(self) -> Client:
        """The raw nats-py client (audio frames, control commands); after start only.

        A second connection, separate from the broker's: a slow audio consumer
        makes the server cut its connection, and that must not take the
        JetStream control plane down with it (nor the other way round).
        """
        if self._nc is None:
            raise VoicebusError("Service.nc is available only after start")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        """JetStream context on :attr:`nc` (KV buckets, raw JetStream publishes)."""
        if self._js is None:
            raise VoicebusError("Service.js is available only after start")
        return self._js

    @property
    def db(self) -> AsyncEngine | None:
        """The database engine (search_path = ``db_schema``), or None when not configured."""
        return self._db

    @property
    def ready(self) -> bool:
        """True between a completed start and the beginning of shutdown."""
        return self._ready

    @cached_property
    def faststream(self) -> FastStream:
        """A FastStream app over :attr:`broker`, for its AsyncAPI document.

        ``faststream docs gen`` can point at it. Run the service with
        :meth:`run`, not with this app: it knows nothing of provisioning or hooks.
        """
        return faststream_app(self.broker, title=f"voicebus {self.name}")

    def asyncapi_json(self) -> str:
        """The AsyncAPI 3.0 document of this service's subscribers and publishers."""
        return str(self.faststream.schema.to_specification().to_json())

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Connect, provision, open the database, start the broker and run start-up hooks.

        On any failure, whatever was started is stopped again and the error re-raised.
        """
        if self._nc is not None:
            raise VoicebusError("service already started")
        log.info("service starting")
        try:
            SERVICE_INFO.labels(self.name, self.settings.instance_id).set(1)
            SERVICE_READY.labels(self.name, self.settings.instance_id).set_function(self._ready_now)
            if not self._exporting:
                self._exporting = export_spans(self.tracer_provider, self.settings)
            self._nc = await connect(self.settings, name=f"{self.settings.connection_name}/raw")
            self._js = self._nc.jetstream()
            streams, buckets = used_by(
                self.name,
                streams_with_caps(events_max_bytes=self.settings.events_max_bytes),
                kv_buckets(self.settings.call_lease_ttl_s),
            )
            await provision(
                self._js,
                streams=streams,
                kv_buckets=buckets,
                replicas=self.settings.jetstream_replicas,
                storage=self.settings.jetstream_storage,
            )
            self._provisioned = True
            await self._open_database()
            self._hooks_started = True
            for hook in self._connected_hooks:
                await hook(self)
            undeclare_streams(self.broker, STREAMS)
            await consumers.ensure_declared(self._js, self.broker)
            self._broker_starting = True
            await self.broker.start()
            # Ready means subscribed: a PING round trip makes the server register every
            # subscription before anyone is told the service is up (no "no responders").
            await self.broker.config.connection_state.connection.flush()
            await self._start_relay()
            for hook in self._startup_hooks:
                await hook(self)
        except BaseException:
            log.exception("service start failed")
            await self.stop()
            raise
        self._ready = True
        log.info("service ready")

    def _ready_now(self) -> float:
        """``voicebus_service_ready``'s value: started, and NATS connected."""
        nc = self._nc
        return 1.0 if self._ready and nc is not None and nc.is_connected else 0.0

    async def stop(self) -> None:
        """Stop in order; safe after a partial start and when called twice.

        A failing step is logged and the later steps still run, so the NATS
        connection is drained and the database released whatever happened.
        """
        self._ready = False
        if self._hooks_started:
            self._hooks_started = False
            for hook in reversed(self._shutdown_hooks):
                await _logged("shutdown hook failed", hook(self), hook=_name(hook))
        if self._relay is not None:
            relay, self._relay = self._relay, None
            await _logged("dead-letter relay stop failed", relay.stop())
        if self._broker_starting:
            self._broker_starting = False
            await _logged("broker stop failed", stop_broker(self.broker))
        await _logged("nats drain failed", self._close_nats())
        if self._db is not None:
            engine, self._db = self._db, None
            await _logged("database dispose failed", engine.dispose())
        self._provisioned = False
        self.tracer_provider.force_flush(timeout_millis=5000)
        SERVICE_INFO.remove(self.name, self.settings.instance_id)
        SERVICE_READY.remove(self.name, self.settings.instance_id)
        log.info("service stopped")

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """Start on enter, stop on exit: an ASGI lifespan or a test's ``async with``."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def check_readiness(self) -> dict[str, bool]:
        """Evaluate every readiness condition, built-in and added, concurrently."""
        checks: dict[str, ReadinessCheck] = {
            "started": self._is_ready,
            "nats": self._nats_connected,
            "jetstream": self._is_provisioned,
            "broker": self._broker_running,
        }
        if self._db is not None:
            checks["database"] = self._database_reachable
        checks.update(self._checks)
        return await readiness.evaluate(checks)

    # -- ASGI ---------------------------------------------------------------

    @overload
    def asgi(self, app: None = None) -> Starlette: ...

    @overload
    def asgi(self, app: AppT) -> AppT: ...

    def asgi(self, app: AppT | None = None) -> AppT | Starlette:
        """Add ``/healthz``, ``/readyz`` and ``/metrics`` and this service's lifespan to ``app``.

        Args:
            app: a FastAPI or Starlette app; its own lifespan runs inside the
                service's (after start, before stop). None gives a fresh Starlette app.

        Returns:
            The same app (or the new one), ready for :meth:`run` or any ASGI server.
        """
        return http.mount(self, app)

    def run(self, app: Starlette) -> None:
        """Serve ``app`` with uvicorn until SIGTERM/SIGINT, then shut down gracefully."""
        http.serve(self, app)

    # -- internals ----------------------------------------------------------

    async def _open_database(self) -> None:
        if self.db_schema is None:
            return
        settings = self.settings
        if settings.database_url is None:
            log.warning("database not configured", extra={"schema": self.db_schema})
            return
        self._db = dbkit.create_engine(
            settings.database_url.get_secret_value(),
            self.db_schema,
            application_name=settings.connection_name,
            connect_timeout_s=settings.db_connect_timeout_s,
            statement_timeout_s=settings.db_statement_timeout_s,
            pool_timeout_s=settings.db_pool_timeout_s,
        )
        if self.migrations is None:
            await dbkit.ensure_schema(self._db, self.db_schema)
            return
        from voicebus.runtime.migrations.runner import require_head

        try:
            await require_head(self._db, self.migrations)
        except MigrationError as exc:
            log.critical(
                "database schema not migrated",
                extra={
                    "schema": self.db_schema,
                    "command": self.migrations.command,
                    "reason": str(exc),
                },
            )
            raise

    async def _start_relay(self) -> None:
        """Relay the max-deliveries advisories of this service's command consumers."""
        durables = consumers.command_durables(self.broker)
        if durables:
            self._relay = AdvisoryRelay(self.js, self.name, durables)
            await self._relay.start()

    async def _close_nats(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            await drain(nc)

    async def _is_ready(self) -> bool:
        return self._ready

    async def _is_provisioned(self) -> bool:
        return self._provisioned

    async def _broker_running(self) -> bool:
        return bool(self.broker.running)

    async def _nats_connected(self) -> bool:
        if self._nc is None or not self._nc.is_connected:
            return False
        state = self.broker.config.connection_state
        return bool(state) and state.connection.is_connected

    async def _database_reachable(self) -> bool:
        return self._db is not None and await dbkit.ping(self._db)


async def _logged(message: str, step: Awaitable[None], **fields: str) -> None:
    """Await a shutdown step; log its failure with a fixed message instead of raising."""
    try:
        await step
    except Exception:
        log.exception(message, extra=fields)


def _name(hook: Hook) -> str:
    return getattr(hook, "__qualname__", repr(hook))
