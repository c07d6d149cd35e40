"""Signed stream parameters: the webhook answer's identity comes back unforged (pure)."""

from __future__ import annotations

import pytest

from voicebus.gateway.parameters import (
    CALLBACK,
    TRANSFER,
    CallIdentity,
    InvalidStreamParametersError,
    context_from_query,
    from_parameters,
    stream_purpose,
    to_parameters,
)

pytestmark = pytest.mark.unit

KEY = b"k" * 32
P = stream_purpose("twilio")
NOW = 1_800_000_000.0
IDENTITY = CallIdentity(
    call_id="0193a5f2-7c1e-7a3b-9f00-5d2c8e1b4a77",
    tenant_id="acme",
    agent_id="demo",
    from_number="+14155550100",
    to_number="+14155550199",
    context={"customer": "Ada", "order_id": "1234"},
)


def test_round_trip() -> None:
    params = to_parameters(IDENTITY, KEY, NOW, purpose=P)
    assert params["call_id"] == IDENTITY.call_id
    assert params["ctx_customer"] == "Ada"
    assert from_parameters(params, KEY, NOW + 5, ttl_s=300, purpose=P) == IDENTITY


def test_optional_parties_are_left_out() -> None:
    identity = CallIdentity(call_id="c1", tenant_id="t1", agent_id="a1")
    params = to_parameters(identity, KEY, NOW, purpose=P)
    assert set(params) == {"call_id", "tenant_id", "agent_id", "vb_token"}
    assert from_parameters(params, KEY, NOW, ttl_s=300, purpose=P) == identity


def test_a_pinned_agent_version_is_signed_with_the_rest() -> None:
    pinned = CallIdentity(call_id="c1", tenant_id="t1", agent_id="a1", agent_version=3)
    params = to_parameters(pinned, KEY, NOW, purpose=P)
    assert params["agent_version"] == "3"
    assert from_parameters(params, KEY, NOW, ttl_s=300, purpose=P) == pinned
    with pytest.raises(InvalidStreamParametersError, match="does not match"):
        from_parameters({**params, "agent_version": "4"}, KEY, NOW, ttl_s=300, purpose=P)


@pytest.mark.parametrize(
    "change",
    [
        {"tenant_id": "other"},
        {"agent_version": "2"},
        {"ctx_customer": "Eve"},
        {"ctx_added": "x"},
        {"vb_token": "1800000000." + "0" * 64},
        {"vb_token": "garbage"},
        {"vb_token": ""},
    ],
)
def test_any_change_is_refused(change: dict[str, str]) -> None:
    params = {**to_parameters(IDENTITY, KEY, NOW, purpose=P), **change}
    with pytest.raises(InvalidStreamParametersError):
        from_parameters(params, KEY, NOW, ttl_s=300, purpose=P)


def test_a_removed_parameter_is_refused() -> None:
    params = to_parameters(IDENTITY, KEY, NOW, purpose=P)
    del params["ctx_order_id"]
    with pytest.raises(InvalidStreamParametersError, match="does not match"):
        from_parameters(params, KEY, NOW, ttl_s=300, purpose=P)


def test_another_key_is_refused() -> None:
    params = to_parameters(IDENTITY, KEY, NOW, purpose=P)
    with pytest.raises(InvalidStreamParametersError):
        from_parameters(params, b"another key", NOW, ttl_s=300, purpose=P)


def test_expired_or_future_tokens_are_refused() -> None:
    params = to_parameters(IDENTITY, KEY, NOW, purpose=P)
    with pytest.raises(InvalidStreamParametersError, match="expired"):
        from_parameters(params, KEY, NOW + 301, ttl_s=300, purpose=P)
    with pytest.raises(InvalidStreamParametersError, match="expired"):
        from_parameters(params, KEY, NOW - 120, ttl_s=300, purpose=P)
    assert (
        from_parameters(params, KEY, NOW - 30, ttl_s=300, purpose=P) == IDENTITY
    )  # small clock skew


def test_signed_but_invalid_ids_are_refused() -> None:
    bad = CallIdentity(call_id="a.b", tenant_id="acme", agent_id="demo")
    with pytest.raises(InvalidStreamParametersError, match="call id"):
        from_parameters(to_parameters(bad, KEY, NOW, purpose=P), KEY, NOW, ttl_s=300, purpose=P)


def test_context_from_query_keeps_only_ctx_identifiers() -> None:
    query = {"ctx_customer": "Ada", "ctx_": "x", "ctx_1bad": "x", "other": "x",
             "ctx_long": "x" * 257, "ctx_order_id": "1234"}  # fmt: skip
    assert context_from_query(query) == {"customer": "Ada", "order_id": "1234"}


def test_context_from_query_is_bounded() -> None:
    query = {f"ctx_v{i}": str(i) for i in range(100)}
    assert len(context_from_query(query)) == 32


@pytest.mark.parametrize(
    "other", [stream_purpose("plivo"), stream_purpose("browser"), CALLBACK, TRANSFER]
)
def test_parameters_signed_for_another_purpose_or_provider_are_refused(other: str) -> None:
    params = to_parameters(IDENTITY, KEY, NOW, purpose=other)
    with pytest.raises(InvalidStreamParametersError, match="does not match"):
        from_parameters(params, KEY, NOW, ttl_s=300, purpose=P)
