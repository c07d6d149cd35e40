"""JetStream streams and KV buckets, defined once for every service.

These are plain values; ``voicebus.runtime`` turns them into nats-py configs
and provisions them idempotently at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from voicebus.contracts import subjects


class Retention(StrEnum):
    """How a stream keeps messages."""

    LIMITS = "limits"
    """Kept until age/size limits: any number of consumers replay them."""
    WORK_QUEUE = "workqueue"
    """Removed once acknowledged: exactly one consumer handles each message."""


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A JetStream stream.

    Attributes:
        name: stream name.
        subjects: the subjects it stores.
        retention: limits (replayable history) or work queue (one owner).
        max_age_s: how long a message is kept, in seconds (0 = forever).
        duplicate_window_s: publishes with the same ``Nats-Msg-Id`` inside
            this window are stored once.
        max_msg_bytes: largest message accepted.
        description: shown by ``nats stream info``.
        max_bytes: the stream's byte cap, oldest messages dropped when full (-1: none).
    """

    name: str
    subjects: tuple[str, ...]
    retention: Retention
    max_age_s: float
    duplicate_window_s: float
    max_msg_bytes: int
    description: str
    max_bytes: int = -1


@dataclass(frozen=True, slots=True)
class KVSpec:
    """A JetStream key-value bucket.

    Attributes:
        bucket: bucket name.
        ttl_s: entries expire after this many seconds without an update
            (0 = never).
        history: revisions kept per key.
        description: what the bucket holds.
    """

    bucket: str
    ttl_s: float
    history: int
    description: str


DAY: Final = 24 * 3600.0

EVENTS: Final = StreamSpec(
    name="VB_EVENTS",
    subjects=(subjects.EVENTS_ALL,),
    retention=Retention.LIMITS,
    max_age_s=30 * DAY,
    duplicate_window_s=120.0,
    max_msg_bytes=1024 * 1024,
    description="Every fact about every call; durable and replayable.",
)

COMMANDS: Final = StreamSpec(
    name="VB_COMMANDS",
    subjects=(subjects.COMMANDS_ALL,),
    retention=Retention.WORK_QUEUE,
    max_age_s=1 * DAY,
    duplicate_window_s=120.0,
    max_msg_bytes=256 * 1024,
    description="Commands with exactly one owner (e.g. vb.cmd.call.originate).",
)

DEAD_LETTERS: Final = StreamSpec(
    name="VB_DEAD_LETTERS",
    subjects=(subjects.DEAD_LETTERS_ALL,),
    retention=Retention.LIMITS,
    max_age_s=90 * DAY,
    duplicate_window_s=120.0,
    # The original message (up to VB_EVENTS' 1 MiB) plus the dead-letter headers.
    max_msg_bytes=2 * 1024 * 1024,
    description=(
        "Messages a consumer could not handle (vb.dlq.<service>.<reason>), each with its "
        "original subject, headers and data, kept for inspection and replay."
    ),
)

ADVISORIES: Final = StreamSpec(
    name="VB_ADVISORIES",
    subjects=(subjects.max_deliveries_advisory(COMMANDS.name),),
    retention=Retention.LIMITS,
    # As long as VB_COMMANDS keeps the command the advisory points at.
    max_age_s=COMMANDS.max_age_s,
    duplicate_window_s=120.0,
    max_msg_bytes=64 * 1024,
    description=(
        "JetStream's max-deliveries advisories of VB_COMMANDS consumers, kept so that a "
        "command that ran out of deliveries reaches VB_DEAD_LETTERS even when its owner "
        "was down when the advisory was sent."
    ),
)

SESSIONS: Final = KVSpec(
    bucket="vb_sessions",
    ttl_s=6 * 3600.0,
    history=1,
    description="Conversation state of live calls, so another instance can take a call over.",
)

CALL_OWNERS: Final = KVSpec(
    bucket="vb_call_owners",
    ttl_s=10.0,
    history=1,
    description=(
        "Leases: which instance of each service owns a live call. An owner renews its "
        "lease well inside the TTL; an expired lease lets another instance re-claim the call."
    ),
)

CALL_SLOTS: Final = KVSpec(
    bucket="vb_call_slots",
    ttl_s=CALL_OWNERS.ttl_s,
    history=1,
    description=(
        "Concurrent-call slots: key <tenant>.<n> (n below the tenant's max_concurrent_calls) "
        "held by the gateway that admitted a live call, renewed like a call lease, so a "
        "dead gateway's slots expire with the lease TTL."
    ),
)

STREAM_CLAIMS: Final = KVSpec(
    bucket="vb_stream_claims",
    ttl_s=DAY + 120.0,
    history=1,
    description=(
        "One key per call whose media stream started: a second media WebSocket for the "
        "same call is refused on every gateway. Kept longer than any stream token lives."
    ),
)

WEBHOOK_NONCES: Final = KVSpec(
    bucket="vb_webhook_nonces",
    ttl_s=DAY,
    history=1,
    description=(
        "One key per signed provider webhook nonce seen (Plivo V3, Vobiz), so a replayed "
        "signed request is refused on every gateway for a day."
    ),
)

RATE_LIMITS: Final = KVSpec(
    bucket="vb_rate_limits",
    ttl_s=120.0,
    history=1,
    description=(
        "Request counters of the REST edge per key and minute, shared by every edge "
        "instance so that N replicas enforce one limit."
    ),
)

STREAMS: Final[tuple[StreamSpec, ...]] = (EVENTS, COMMANDS, DEAD_LETTERS, ADVISORIES)
KV_BUCKETS: Final[tuple[KVSpec, ...]] = (
    SESSIONS,
    CALL_OWNERS,
    CALL_SLOTS,
    STREAM_CLAIMS,
    WEBHOOK_NONCES,
    RATE_LIMITS,
)


def owner_key(service: str, call_id: str) -> str:
    """Key of a call-ownership lease in ``vb_call_owners``: ``<service>.<call>``."""
    return f"{subjects.token(service, 'service')}.{subjects.token(call_id, 'call id')}"


def slot_key(tenant_id: str, slot: int) -> str:
    """Key of one concurrent-call slot of a tenant in ``vb_call_slots``: ``<tenant>.<n>``."""
    if slot < 0:
        raise ValueError(f"slot must be >= 0, got {slot}")
    return f"{subjects.token(tenant_id, 'tenant id')}.{slot}"


def slot_filter(tenant_id: str) -> str:
    """Key filter of every concurrent-call slot of a tenant in ``vb_call_slots``."""
    return f"{subjects.token(tenant_id, 'tenant id')}.*"
