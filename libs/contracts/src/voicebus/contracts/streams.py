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
    """

    name: str
    subjects: tuple[str, ...]
    retention: Retention
    max_age_s: float
    duplicate_window_s: float
    max_msg_bytes: int
    description: str


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

STREAM_CLAIMS: Final = KVSpec(
    bucket="vb_stream_claims",
    ttl_s=DAY + 120.0,
    history=1,
    description=(
        "One key per call whose media stream started: a second media WebSocket for the "
        "same call is refused on every gateway. Kept longer than any stream token lives."
    ),
)

STREAMS: Final[tuple[StreamSpec, ...]] = (EVENTS, COMMANDS)
KV_BUCKETS: Final[tuple[KVSpec, ...]] = (SESSIONS, CALL_OWNERS, STREAM_CLAIMS)


def owner_key(service: str, call_id: str) -> str:
    """Key of a call-ownership lease in ``vb_call_owners``: ``<service>.<call>``."""
    return f"{subjects.token(service, 'service')}.{subjects.token(call_id, 'call id')}"
