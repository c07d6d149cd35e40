"""Contract specs map to nats-py configs field by field; database URLs map to asyncpg."""

from __future__ import annotations

import pytest
from nats.aio.client import RawCredentials
from nats.js.api import RetentionPolicy, StorageType

from voicebus.contracts.streams import (
    CALL_OWNERS,
    COMMANDS,
    EVENTS,
    SESSIONS,
    KVSpec,
    Retention,
    StreamSpec,
)
from voicebus.runtime.bus import connect_options, user_credentials
from voicebus.runtime.db import asyncpg_url, schema_name
from voicebus.runtime.errors import DatabaseError
from voicebus.runtime.provision import jstream, kv_config, kv_stream_name, stream_config
from voicebus.runtime.settings import ServiceSettings

pytestmark = pytest.mark.unit


def test_events_stream_config() -> None:
    config = stream_config(EVENTS)
    assert config.name == "VB_EVENTS"
    assert config.subjects == list(EVENTS.subjects)
    assert config.retention is RetentionPolicy.LIMITS
    assert config.max_age == EVENTS.max_age_s
    assert config.duplicate_window == EVENTS.duplicate_window_s
    assert config.max_msg_size == EVENTS.max_msg_bytes
    assert config.storage is StorageType.FILE
    assert config.num_replicas == 1
    assert config.description == EVENTS.description


def test_commands_stream_is_a_work_queue() -> None:
    config = stream_config(COMMANDS, replicas=3)
    assert config.retention is RetentionPolicy.WORK_QUEUE
    assert config.num_replicas == 3


def test_nanoseconds_on_the_wire() -> None:
    wire = stream_config(EVENTS).as_dict()
    assert wire["max_age"] == int(EVENTS.max_age_s * 1e9)
    assert wire["duplicate_window"] == int(EVENTS.duplicate_window_s * 1e9)


def test_unlimited_age_stays_zero() -> None:
    spec = StreamSpec("S", ("s.>",), Retention.LIMITS, 0, 60, 1024, "d")
    assert stream_config(spec).max_age == 0


def test_kv_config() -> None:
    config = kv_config(CALL_OWNERS)
    assert config.bucket == "vb_call_owners"
    assert config.ttl == CALL_OWNERS.ttl_s
    assert config.history == CALL_OWNERS.history
    assert config.storage is StorageType.FILE
    assert kv_config(SESSIONS).ttl == SESSIONS.ttl_s
    assert kv_config(KVSpec("forever", 0, 5, "d")).ttl is None
    assert kv_stream_name("vb_sessions") == "KV_vb_sessions"


def test_jstream_never_declares() -> None:
    stream = jstream(EVENTS)
    assert stream.name == "VB_EVENTS"
    assert stream.declare is False


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db:5432/x", "postgresql+asyncpg://u:***@db:5432/x"),
        ("postgres://u@db/x", "postgresql+asyncpg://u@db/x"),
        ("postgresql+asyncpg://u@db/x", "postgresql+asyncpg://u@db/x"),
        ("postgresql://u@db/x?sslmode=require", "postgresql+asyncpg://u@db/x?ssl=require"),
    ],
)
def test_asyncpg_url(url: str, expected: str) -> None:
    assert asyncpg_url(url).render_as_string(hide_password=True) == expected


@pytest.mark.parametrize("url", ["mysql://u@db/x", "sqlite:///x.db", "not a url"])
def test_asyncpg_url_refuses_others(url: str) -> None:
    with pytest.raises(DatabaseError):
        asyncpg_url(url)


@pytest.mark.parametrize("name", ["audit", "_x", "campaigns_v2"])
def test_schema_names(name: str) -> None:
    assert schema_name(name) == name


@pytest.mark.parametrize("name", ["", "Audit", "1abc", "a-b", "a;drop", "x" * 64, "a b"])
def test_bad_schema_names(name: str) -> None:
    with pytest.raises(DatabaseError, match="invalid schema name"):
        schema_name(name)


def test_nats_credentials(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    DemoSettings = settings_cls  # noqa: N806 - a class, named like one
    assert user_credentials(DemoSettings()) is None
    assert user_credentials(DemoSettings(nats_creds="/etc/nats/demo.creds")) == (
        "/etc/nats/demo.creds"
    )
    raw = "-----BEGIN NATS USER JWT-----\neyJ0\n------END NATS USER JWT------\n"
    assert isinstance(user_credentials(DemoSettings(nats_creds=raw)), RawCredentials)
    options = connect_options(DemoSettings(nats_user="svc", nats_password="pw"), name="n")
    assert (options["user"], options["password"]) == ("svc", "pw")
    assert options["max_reconnect_attempts"] == -1
