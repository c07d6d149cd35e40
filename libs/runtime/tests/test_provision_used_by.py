"""A service provisions only the streams and KV buckets its NATS user may create."""

from __future__ import annotations

import pytest

from voicebus.contracts import permissions
from voicebus.contracts.streams import (
    CALL_OWNERS,
    COMMANDS,
    DEAD_LETTERS,
    EVENTS,
    KV_BUCKETS,
    SESSIONS,
    STREAMS,
)
from voicebus.runtime.provision import kv_buckets, streams_with_caps, used_by

pytestmark = pytest.mark.unit


def test_a_service_provisions_what_its_grant_names_with_this_deployments_limits() -> None:
    streams, buckets = used_by(
        "orchestrator", streams_with_caps(events_max_bytes=1024), kv_buckets(3.0)
    )
    assert [s.name for s in streams] == [EVENTS.name, COMMANDS.name, DEAD_LETTERS.name]
    assert next(s for s in streams if s.name == EVENTS.name).max_bytes == 1024
    assert [b.bucket for b in buckets] == [SESSIONS.bucket, CALL_OWNERS.bucket]
    assert next(b for b in buckets if b.bucket == CALL_OWNERS.bucket).ttl_s == 3.0
    audit_streams, audit_buckets = used_by("audit", STREAMS, KV_BUCKETS)
    assert {s.name for s in audit_streams} == {EVENTS.name, DEAD_LETTERS.name}
    assert audit_buckets == ()


def test_every_service_in_the_grant_table_and_any_other_name_provisions_everything() -> None:
    assert set(permissions.JETSTREAM) == set(permissions.SERVICES)
    assert used_by("a-test-service", STREAMS, KV_BUCKETS) == (STREAMS, KV_BUCKETS)
