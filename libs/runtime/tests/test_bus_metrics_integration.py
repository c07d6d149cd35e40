"""FastStream's bus metrics on a real nats-server are labelled by subject pattern, not call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from voicebus.contracts import subjects
from voicebus.runtime.service import Service
from voicebus.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration


def _faststream_series(text: str) -> set[str]:
    return {
        line.rsplit(" ", 1)[0]
        for line in text.splitlines()
        if line.startswith("faststream_") and not line.startswith("#")
    }


async def test_series_do_not_grow_with_calls(
    clean_env: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    embedded_nats_factory: Callable[..., Any],
    lifespan: Any,
) -> None:
    server = embedded_nats_factory()
    service = Service(settings_cls(nats_url=server.url, instance_id="demo-it"))
    handled: asyncio.Queue[str] = asyncio.Queue()

    @service.broker.subscriber("vb.ctl.*.say")
    async def on_say(body: dict[str, Any]) -> None:
        await handled.put(body["call"])

    app = service.asgi()

    async def calls(first: int, count: int) -> str:
        for i in range(first, first + count):
            call = f"call-{i:04d}"
            await service.broker.publish({"call": call}, subjects.ctl(call, "say"))
            assert await asyncio.wait_for(handled.get(), 5) == call
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://demo"
        ) as http:
            return (await http.get("/metrics")).text

    async with lifespan(app):
        after_few = await calls(0, 3)
        after_many = await calls(3, 40)

    assert 'handler="vb.ctl.*.say"' in after_many
    assert 'destination="vb.ctl.*.say"' in after_many
    assert "call-" not in after_many
    assert _faststream_series(after_few) == _faststream_series(after_many)
