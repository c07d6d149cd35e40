"""Lease keys and the configurable lease TTL (pure)."""

from __future__ import annotations

import pytest

from voicebus.contracts.streams import (
    CALL_OWNERS,
    CALL_SLOTS,
    KV_BUCKETS,
    SESSIONS,
    owner_key,
    slot_filter,
    slot_key,
)
from voicebus.runtime.leases import GATEWAY, parse_owner_key
from voicebus.runtime.provision import kv_buckets

pytestmark = pytest.mark.unit


def test_owner_keys_parse_back_to_service_and_call() -> None:
    assert parse_owner_key(owner_key("media", "c-1")) == ("media", "c-1")
    assert parse_owner_key(owner_key(GATEWAY, "c-2")) == (GATEWAY, "c-2")


@pytest.mark.parametrize("key", ["nodot", ".c1", "media.", ""])
def test_keys_of_another_shape_are_not_leases(key: str) -> None:
    assert parse_owner_key(key) is None


def test_only_the_lease_buckets_take_the_configured_ttl() -> None:
    buckets = {spec.bucket: spec for spec in kv_buckets(3.0)}
    assert buckets[CALL_OWNERS.bucket].ttl_s == 3.0
    assert buckets[CALL_SLOTS.bucket].ttl_s == 3.0  # slots are renewed with the call leases
    assert buckets[SESSIONS.bucket] == SESSIONS
    assert kv_buckets() == KV_BUCKETS


def test_slot_keys_name_the_tenant_and_the_slot() -> None:
    assert slot_key("acme", 0) == "acme.0"
    assert slot_filter("acme") == "acme.*"
    with pytest.raises(ValueError, match="slot"):
        slot_key("acme", -1)
