"""Process-wide Prometheus metrics shared by every service."""

from __future__ import annotations

from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "SERVICE_INFO", "SERVICE_READY", "render"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""Content type of :func:`render`'s output (Prometheus text format)."""

SERVICE_INFO: Final = Gauge(
    "voicebus_service_info",
    "Always 1 while a voicebus service runs in this process; labels name it.",
    ["service", "instance"],
    registry=REGISTRY,
)

SERVICE_READY: Final = Gauge(
    "voicebus_service_ready",
    "1 while the service is started and its NATS connection is up (read at scrape time), "
    "else 0; alerts such as 'no media instance ready' count these.",
    ["service", "instance"],
    registry=REGISTRY,
)


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The registry's metrics in Prometheus text format, for ``/metrics``."""
    return generate_latest(registry)
