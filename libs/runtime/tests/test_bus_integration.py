"""Raw connections: refused credentials fail fast, a restarted server is rejoined."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from voicebus.runtime.bus import connect
from voicebus.runtime.errors import BusError
from voicebus.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration

AUTH = {"authorization": {"user": "svc", "password": "right-password"}}


async def test_wrong_password_fails_fast(
    clean_env: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    embedded_nats_factory: Callable[..., Any],
) -> None:
    server = embedded_nats_factory(extra_config=AUTH)
    settings = settings_cls(nats_url=server.url, nats_user="svc", nats_password="wrong-password")
    with pytest.raises(BusError, match="refused"):
        await asyncio.wait_for(connect(settings, name="demo/test"), timeout=10)


async def test_reconnects_after_a_server_restart(
    clean_env: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    embedded_nats_factory: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = embedded_nats_factory(extra_config=AUTH)
    settings = settings_cls(nats_url=server.url, nats_user="svc", nats_password="right-password")
    nc = await connect(settings, name="demo/test")
    try:
        caplog.set_level(logging.INFO, logger="voicebus.runtime.bus")
        server.restart()
        for _ in range(100):
            if any(r.message == "nats reconnected" for r in caplog.records):
                break
            await asyncio.sleep(0.1)
        messages = [r.message for r in caplog.records]
        assert "nats disconnected" in messages
        assert "nats reconnected" in messages
        assert nc.is_connected
        await nc.publish("vb.test", b"x")
        await nc.flush(timeout=2)
    finally:
        await nc.drain()
    assert nc.is_closed
