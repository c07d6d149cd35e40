"""Shared fixtures: a settings class for a made-up ``demo`` service, and a clean environment."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import ClassVar

import pytest
from pydantic_settings import SettingsConfigDict
from starlette.types import ASGIApp, Message, Scope

from voicebus.runtime.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    """Settings of a service that exists only in these tests."""

    model_config = SettingsConfigDict(env_prefix="VB_DEMO_")
    service_name: ClassVar[str] = "demo"
    default_http_port: ClassVar[int] = 8099


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``VB_*`` or ``OTEL_*`` variable from the machine leaks into a settings test.

    ``VB_TEST_*`` stay: they point the devkit's fixtures at CI's servers.
    """
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(("VB_", "OTEL_")) and not upper.startswith("VB_TEST_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def settings_cls() -> type[DemoSettings]:
    """The ``demo`` service's settings class (env prefix ``VB_DEMO_``)."""
    return DemoSettings


LifespanDriver = Callable[[ASGIApp], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def _drive_lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan as a server would: startup, then shutdown on exit."""
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()

    async def receive() -> Message:
        return await to_app.get()

    async def send(message: Message) -> None:
        await from_app.put(message)

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, receive, send))
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        await asyncio.wait({task})
        cause = None if task.cancelled() else task.exception()
        raise RuntimeError(f"lifespan start-up failed: {started.get('message')}") from cause
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        stopped = await from_app.get()
        await task
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


@pytest.fixture
def lifespan() -> LifespanDriver:
    """``async with lifespan(app):`` runs the app's ASGI lifespan around the block."""
    return _drive_lifespan
