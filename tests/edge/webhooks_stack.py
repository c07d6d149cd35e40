"""The edge alone on real NATS and PostgreSQL, for the webhook and usage tests.

No orchestrator, recorder or audit: they would answer the tests' events with events of
their own (a call.error, a recording.ready), and these tests count exactly what arrives.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import uvicorn
from cryptography.fernet import Fernet
from edge_stack import ADMIN, EdgeStack
from pydantic import SecretStr

from voicebus.devkit.embedded_postgres import create_database, random_database_name
from voicebus.devkit.schemas import migrate_all
from voicebus.edge.app import build as build_edge
from voicebus.edge.settings import EdgeSettings

WEBHOOK_SETTINGS: dict[str, Any] = {
    "webhooks_allow_loopback": True,
    "webhooks_max_attempts": 8,
    "webhooks_retry_base_s": 0.1,
    "webhooks_retry_cap_s": 0.5,
    "webhooks_poll_s": 0.1,
    "webhooks_timeout_s": 5.0,
}
"""Loopback receivers allowed; retries in fractions of a second."""


class EdgeOnlyStack(EdgeStack):
    """:class:`EdgeStack`'s thread, loop and helpers, serving the edge alone."""

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server: uvicorn.Server | None = None
        task: asyncio.Task[None] | None = None
        try:
            database_url = await create_database(self.postgres_url, random_database_name("vbwh_"))
            await migrate_all(database_url)
            settings = EdgeSettings(
                nats_url=self.nats_url,
                database_url=database_url,
                instance_id="edge-webhooks",
                http_port=self.port,
                admin_token=SecretStr(ADMIN),
                credentials_key=SecretStr(Fernet.generate_key().decode()),
                api_rate_limit_per_minute=100_000,
                **WEBHOOK_SETTINGS,
            )
            _, app = build_edge(settings)
            config = uvicorn.Config(
                app, host="127.0.0.1", port=self.port, lifespan="on", log_config=None
            )
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            async with asyncio.timeout(60):
                while not server.started:
                    if task.done():
                        raise RuntimeError("the edge did not start")
                    await asyncio.sleep(0.02)
            self.nc = await nats.connect(self.nats_url, name="edge-webhooks-e2e")
            self._ready.set()
            await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            if self.nc is not None:
                await self.nc.drain()
            if server is not None and task is not None:
                server.should_exit = True
                await asyncio.wait_for(task, timeout=30)
