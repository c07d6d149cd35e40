"""The gateway's Prometheus metrics (process registry, served on ``/metrics``)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Final

from prometheus_client import REGISTRY, Counter, Gauge, Histogram


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


# -- calls ------------------------------------------------------------------------------

CALLS_ACTIVE: Final = Gauge(
    "voicebus_gateway_calls_active",
    "Calls whose media stream runs on this process, by provider.",
    ["provider"],
    registry=REGISTRY,
)
CALLS_STARTED: Final = Counter(
    "voicebus_gateway_calls_started",
    "Calls whose media stream started (call.started published), by provider.",
    ["provider"],
    registry=REGISTRY,
)
CALLS_ENDED: Final = Counter(
    "voicebus_gateway_calls_ended",
    "Started calls that ended (call.ended published), by provider and end reason.",
    ["provider", "reason"],
    registry=REGISTRY,
)


def call_started(provider: str) -> None:
    """Count a call whose media stream started on this process."""
    CALLS_STARTED.labels(provider).inc()
    CALLS_ACTIVE.labels(provider).inc()


def call_ended(provider: str, reason: str) -> None:
    """Count the end of a call :func:`call_started` counted."""
    CALLS_ENDED.labels(provider, reason).inc()
    CALLS_ACTIVE.labels(provider).dec()


# -- media WebSocket messages -----------------------------------------------------------

WS_MESSAGES_IN: Final = Counter(
    "voicebus_gateway_ws_messages_in",
    "Media WebSocket messages received from a provider (ignored ones included).",
    ["provider"],
    registry=REGISTRY,
)
WS_MESSAGES_OUT: Final = Counter(
    "voicebus_gateway_ws_messages_out",
    "Media WebSocket messages sent to a provider (audio, marks, clears).",
    ["provider"],
    registry=REGISTRY,
)

# -- provider webhooks and dialing ------------------------------------------------------

WEBHOOK_SECONDS: Final = Histogram(
    "voicebus_gateway_webhook_seconds",
    "Provider webhooks answered by the gateway: time to answer, by provider, webhook kind "
    "(inbound, answer, status, transfer) and result (HTTP status class, e.g. 2xx).",
    ["provider", "kind", "result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)


def observe_webhook(provider: str, kind: str, status: int, seconds: float) -> None:
    """Record one answered provider webhook."""
    result = f"{status // 100}xx" if 100 <= status < 600 else "other"
    WEBHOOK_SECONDS.labels(provider, kind, result).observe(seconds)


class DialResult(StrEnum):
    """How an ordered outbound dial went (the ``result`` label)."""

    DIALED = "dialed"
    """The provider accepted the call."""
    FAILED = "failed"
    """The provider refused or could not be reached."""
    NO_ACCOUNT = "no_account"
    """The tenant has no account with the provider."""
    REFUSED_AGENT = "refused_agent"
    """The agent does not exist or is not callable."""
    REFUSED_PROVIDER = "refused_provider"
    """No dialing provider of that name (``provider`` is then ``unknown``)."""
    REFUSED_CONCURRENCY = "refused_concurrency"
    """The tenant's live calls were at its ``max_concurrent_calls``: not dialed."""


DIALS: Final = Counter(
    "voicebus_gateway_dials",
    "Outbound dials ordered (cmd.call.originate), by provider and result.",
    ["provider", "result"],
    registry=REGISTRY,
)


def count_dial(provider: str, result: DialResult) -> None:
    """Count one ordered dial."""
    DIALS.labels(provider, result.value).inc()


class CallRefusal(StrEnum):
    """Why an inbound call was refused before it started (a bounded label)."""

    CONCURRENCY_LIMIT = "concurrency_limit"
    """The tenant's live calls were at its ``max_concurrent_calls``."""


CALLS_REFUSED: Final = Counter(
    "voicebus_gateway_calls_refused",
    "Inbound calls refused with the provider's busy answer, by provider and reason.",
    ["provider", "reason"],
    registry=REGISTRY,
)


def count_call_refused(provider: str, reason: CallRefusal) -> None:
    """Count one inbound call refused before it started."""
    CALLS_REFUSED.labels(provider, reason.value).inc()


# -- tenants' provider accounts ---------------------------------------------------------


class StaleReason(StrEnum):
    """Why the edge's last answer about an account was used (the ``reason`` label)."""

    UNREACHABLE = "unreachable"
    """Nobody answers ``vb.rpc.edge.accounts.get`` (the edge is not running), or NATS is
    unusable."""
    TIMEOUT = "timeout"
    """The edge did not answer within ``VB_GATEWAY_ACCOUNT_LOOKUP_TIMEOUT_S``."""
    EDGE_ERROR = "edge_error"
    """The edge answered with a 5xx (its database is down) or an unusable reply."""


ACCOUNTS_STALE: Final = Counter(
    "voicebus_gateway_account_stale_served",
    "Provider account lookups the edge could not answer, served with its last answer "
    "(at most VB_GATEWAY_ACCOUNT_STALE_S past its TTL), by provider and reason.",
    ["provider", "reason"],
    registry=REGISTRY,
)


def count_stale_account(provider: str, reason: StaleReason) -> None:
    """Count one account lookup served with the edge's last answer."""
    ACCOUNTS_STALE.labels(provider, reason.value).inc()


def initialize(providers: Iterable[tuple[str, bool]], end_reasons: Iterable[str]) -> None:
    """Create every call and dial series at zero, so rates read 0 rather than nothing.

    Args:
        providers: (name, dials) of each registered provider.
        end_reasons: every ``call.ended`` reason.
    """
    reasons = list(end_reasons)
    for name, dials in providers:
        CALLS_ACTIVE.labels(name)
        CALLS_STARTED.labels(name)
        WS_MESSAGES_IN.labels(name)
        WS_MESSAGES_OUT.labels(name)
        for reason in reasons:
            CALLS_ENDED.labels(name, reason)
        for refusal in CallRefusal:
            CALLS_REFUSED.labels(name, refusal.value)
        for stale in StaleReason:
            ACCOUNTS_STALE.labels(name, stale.value)
        if dials:
            for result in DialResult:
                if result is not DialResult.REFUSED_PROVIDER:
                    DIALS.labels(name, result.value)
    DIALS.labels("unknown", DialResult.REFUSED_PROVIDER.value)
