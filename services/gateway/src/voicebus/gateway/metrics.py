"""The gateway's Prometheus metrics (process registry, served on ``/metrics``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from prometheus_client import REGISTRY, Counter


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
