"""The gateway's Prometheus metrics (process registry, served on ``/metrics``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from prometheus_client import REGISTRY, Counter, Gauge


class IgnoreReason(StrEnum):
    """Why a media WebSocket message was ignored (the ``reason`` label)."""

    MALFORMED_JSON = "malformed_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_EVENT = "unknown_event"
    OVERSIZE = "oversize"
    BINARY = "binary"
    BEFORE_START = "before_start"
    DUPLICATE_START = "duplicate_start"
    UNKNOWN_MARK = "unknown_mark"
    UNEXPECTED_TRACK = "unexpected_track"
    UNAUTHORIZED_START = "unauthorized_start"
    BUS_UNAVAILABLE = "bus_unavailable"
    """Audio or a playback mark dropped: NATS was unreachable and the client's buffer full."""


WS_MESSAGES_IGNORED: Final = Counter(
    "voicebus_gateway_ws_messages_ignored",
    "Media WebSocket messages from a provider that were counted and ignored; "
    "none of them ends a call.",
    ["provider", "reason"],
    registry=REGISTRY,
)
"""Exposed as ``voicebus_gateway_ws_messages_ignored_total{provider,reason}``."""


def count_ignored(provider: str, reason: IgnoreReason) -> None:
    """Count one ignored media WebSocket message."""
    WS_MESSAGES_IGNORED.labels(provider, reason.value).inc()


class RefusalReason(StrEnum):
    """Why a media WebSocket was refused or closed by the gateway (the ``reason`` label)."""

    CAPACITY = "capacity"
    """The process serves ``ws_max_connections`` already: HTTP 503 at the upgrade."""
    UNAUTHORIZED = "unauthorized"
    """The upgrade's credentials (Exotel's Basic auth) were wrong: HTTP 403."""
    NO_START = "no_start"
    """No valid start within ``ws_start_timeout_s``."""
    RATE = "rate"
    """More inbound bytes per second than ``ws_max_bytes_per_s``."""
    BACKLOG = "backlog"
    """The peer stopped reading: outbound backlog over ``ws_max_backlog_bytes``."""


WS_REFUSED: Final = Counter(
    "voicebus_gateway_ws_refused",
    "Media WebSockets refused at the upgrade or closed by the gateway, by reason.",
    ["reason"],
    registry=REGISTRY,
)
SECURITY_SAMPLED: Final = Counter(
    "voicebus_gateway_security_sampled",
    "Refused webhooks not recorded as a security event (one per source and minute is), "
    "or answered 429 unchecked (the source is over its limit), by provider.",
    ["provider"],
    registry=REGISTRY,
)
WS_OPEN: Final = Gauge(
    "voicebus_gateway_ws_connections",
    "Media WebSockets open in this process.",
    registry=REGISTRY,
)


def count_refused(reason: RefusalReason) -> None:
    """Count one media WebSocket refused or closed by the gateway."""
    WS_REFUSED.labels(reason.value).inc()
