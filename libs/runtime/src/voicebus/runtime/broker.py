"""The FastStream NATS broker every service declares its subscribers and publishers on."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.security import NatsCredentials, NatsSecurity, NatsUserPassword
from faststream.specification import AsyncAPI
from nats.errors import Error as NatsError
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from voicebus.contracts.permissions import inbox_prefix
from voicebus.contracts.streams import StreamSpec
from voicebus.runtime.bus import (
    CONNECT_TIMEOUT_S,
    DRAIN_TIMEOUT_S,
    RECONNECT_WAIT_S,
    tls_context,
    user_credentials,
)
from voicebus.runtime.bus_metrics import PatternPrometheusMiddleware
from voicebus.runtime.delivery import DeliveryPolicy
from voicebus.runtime.settings import ServiceSettings

__all__ = [
    "BROKER_LOGGER",
    "build_broker",
    "faststream_app",
    "stop_broker",
    "undeclare_streams",
]

BROKER_LOGGER: Final = "voicebus.runtime.broker"
"""Logger FastStream writes to when ``hot_path`` is off; set to WARNING so the
per-message INFO lines (which halve throughput) are dropped and failures kept."""

log = logging.getLogger(__name__)


def _security(settings: ServiceSettings) -> NatsSecurity | None:
    tls = tls_context(settings)
    creds = user_credentials(settings)
    if creds is not None:
        return NatsCredentials(creds, ssl_context=tls)
    if settings.nats_user:
        password = settings.nats_password.get_secret_value() if settings.nats_password else ""
        return NatsUserPassword(settings.nats_user, password, ssl_context=tls)
    return None if tls is None else NatsSecurity(ssl_context=tls)


class _Broker(NatsBroker):
    """A ``NatsBroker`` whose JetStream pull subscribers read on the service's own inbox.

    FastStream gives pull subscribers ``_INBOX.`` unless told otherwise; NATS permissions
    keep every service on its own prefix (``voicebus.contracts.permissions``).
    """

    pull_inbox: bytes = b"_INBOX."

    def subscriber(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("inbox_prefix", self.pull_inbox)
        return super().subscriber(*args, **kwargs)


def build_broker(
    settings: ServiceSettings,
    *,
    hot_path: bool,
    tracer_provider: TracerProvider,
    registry: CollectorRegistry = REGISTRY,
) -> NatsBroker:
    """A ``NatsBroker`` with Prometheus, OpenTelemetry and delivery-settling middlewares.

    A JetStream delivery whose handler fails is retried with backoff or set aside
    as a dead letter, never dropped (see :mod:`voicebus.runtime.delivery`).

    Args:
        settings: servers, credentials, service name and shutdown timeout.
        hot_path: no FastStream logger at all (services carrying per-call traffic).
        tracer_provider: spans for consumed and published messages; trace context
            travels in NATS headers.
        registry: where FastStream's ``faststream_*`` metrics are registered,
            labelled by subject pattern (:mod:`voicebus.runtime.bus_metrics`).

    Returns:
        A broker not yet connected; declare subscribers on it before start.
    """
    name = settings.connection_name

    async def on_disconnected() -> None:
        state = broker.config.connection_state
        if state and (state.connection.is_draining or state.connection.is_closed):
            return  # the broker is stopping: a planned disconnect
        log.warning("nats disconnected", extra={"connection": name})

    async def on_reconnected() -> None:
        log.warning("nats reconnected", extra={"connection": name})

    broker_logger: logging.Logger | None = None
    if not hot_path:
        broker_logger = logging.getLogger(BROKER_LOGGER)
        broker_logger.setLevel(logging.WARNING)

    policy = DeliveryPolicy(type(settings).service_name)
    inbox = inbox_prefix(type(settings).service_name)
    broker = _Broker(
        settings.nats_servers,
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=RECONNECT_WAIT_S,
        connect_timeout=CONNECT_TIMEOUT_S,
        drain_timeout=DRAIN_TIMEOUT_S,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        security=_security(settings),
        # Replies come back on a prefix of this service's own, so NATS permissions can
        # keep every other user off them (voicebus.contracts.permissions).
        inbox_prefix=inbox,
        graceful_timeout=float(settings.shutdown_timeout_s),
        middlewares=(
            NatsTelemetryMiddleware(
                tracer_provider=tracer_provider, include_messages_counters=False
            ),
            # Subject patterns, not subjects: a label per call id would grow without bound.
            PatternPrometheusMiddleware(
                registry=registry, app_name=f"voicebus-{type(settings).service_name}"
            ),
            # Innermost: it sees the handler's failure first and settles the delivery.
            policy,
        ),
        logger=broker_logger,
    )
    broker.pull_inbox = f"{inbox}.".encode()
    policy.bind(lambda: broker.config.connection_state.connection)
    return broker


def undeclare_streams(broker: NatsBroker, specs: Iterable[StreamSpec]) -> None:
    """Stop FastStream from declaring the given streams when the broker starts.

    FastStream declares every stream a subscriber names (``stream="VB_EVENTS"``)
    and, when the server's config differs, overwrites it with FastStream's
    defaults (limits retention, no max age). The contract streams are
    provisioned by :func:`voicebus.runtime.provision.provision`, so their
    declarations are switched off. No public FastStream API reaches them.
    """
    builder = broker._stream_builder
    for spec in specs:
        found = builder.get(spec.name)
        if found is not None:
            found[0].declare = False


def faststream_app(broker: NatsBroker, *, title: str) -> FastStream:
    """A FastStream app over ``broker`` whose AsyncAPI version is the contracts' version."""
    try:
        contracts_version = version("voicebus-contracts")
    except PackageNotFoundError:
        contracts_version = "0.0.0"
    spec = AsyncAPI(title=title, version=contracts_version)
    return FastStream(broker, specification=spec, logger=None)


async def stop_broker(broker: NatsBroker) -> None:
    """Stop the subscribers and drain the broker's connection, or close it if it cannot drain.

    FastStream's ``stop`` raises while the connection is reconnecting and then
    leaves it reconnecting forever; here it is closed instead.
    """
    try:
        await broker.stop()
    except NatsError:
        log.warning("nats drain impossible; closing", extra={"connection": "broker"})
        state = broker.config.connection_state
        if state:
            await state.connection.close()
        broker.config.disconnect()
        broker._connection = None
