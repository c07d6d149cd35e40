"""The edge and the services behind it, run in one background thread with its own event loop.

The edge and the gateway are served by uvicorn on loopback ports; audit, orchestrator,
recorder and campaigns run without HTTP. The gateway handles the edge's originate
commands and browser sessions. Tests drive the edge over HTTP from the main thread
(schemathesis' calls are synchronous), and run bus helpers on the stack's
loop with :meth:`EdgeStack.run`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
import uvicorn
from cryptography.fernet import Fernet
from nats.aio.client import Client
from pydantic import SecretStr

from voicebus.audit.app import build as build_audit
from voicebus.audit.settings import AuditSettings
from voicebus.campaigns.app import build as build_campaigns
from voicebus.campaigns.settings import CampaignsSettings
from voicebus.contracts.events import Envelope
from voicebus.devkit.embedded_postgres import create_database, random_database_name
from voicebus.devkit.ports import free_port
from voicebus.devkit.schemas import migrate_all
from voicebus.edge.app import build as build_edge
from voicebus.edge.settings import EdgeSettings
from voicebus.gateway.app import build as build_gateway
from voicebus.gateway.settings import GatewaySettings
from voicebus.orchestrator.app import build as build_orchestrator
from voicebus.orchestrator.settings import OrchestratorSettings
from voicebus.recorder.app import build as build_recorder
from voicebus.recorder.settings import RecorderSettings
from voicebus.runtime.publish import MSG_ID_HEADER
from voicebus.runtime.rpc import TenantSigner
from voicebus.runtime.service import Service
from voicebus.runtime.tenant_keys import generate_keys

ADMIN = "operator-token-edge-e2e-71d2"
AGENTS_DIR = Path(__file__).resolve().parents[2] / "agents"
T = TypeVar("T")


class EdgeStack:
    """Edge + gateway, audit, orchestrator, recorder, campaigns on ``nats_url`` and a fresh
    database."""

    def __init__(
        self,
        nats_url: str,
        postgres_url: str,
        root: Path,
        recorder: dict[str, Any] | None = None,
        gateway: dict[str, Any] | None = None,
        edge: dict[str, Any] | None = None,
    ) -> None:
        self.nats_url = nats_url
        self._recorder_overrides = dict(recorder or {})  # RecorderSettings fields (S3 tests)
        self._gateway_overrides = dict(gateway or {})  # GatewaySettings fields
        self._edge_overrides = dict(edge or {})  # EdgeSettings fields
        self.postgres_url = postgres_url
        self.recordings = root / "recordings"
        self.port = free_port()
        self.gateway_port = free_port()
        self.media_port = free_port()  # the gateway's media WebSocket server
        self.nc: Client | None = None
        self.database_url = ""  # the stack's own database, once started
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="edge-stack", daemon=True)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        # The edge signs the tenant of what it asks; the owners answer nothing unsigned.
        signing_key, self.tenant_public_key = generate_keys()
        self._signing_key = SecretStr(signing_key)
        self.signer = TenantSigner(signing_key)
        """What operator tools sign with (the edge's key)."""

    @property
    def base_url(self) -> str:
        """The edge's root: ``http://127.0.0.1:<port>/api/v1``."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self, timeout: float = 180.0) -> None:
        """Start everything; raises what failed."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the edge stack did not start")
        if self._error is not None:
            raise RuntimeError("the edge stack failed to start") from self._error

    def stop(self) -> None:
        """Stop everything (services drain their connections)."""
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the stack's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def client(self) -> httpx.Client:
        """An HTTP client on the edge."""
        return httpx.Client(base_url=self.base_url, timeout=30)

    async def publish(self, *events: Envelope) -> None:
        """Store events in ``VB_EVENTS`` (as the gateway would)."""
        assert self.nc is not None
        js = self.nc.jetstream()
        for event in events:
            await js.publish(event.subject, event.to_bytes(), headers={MSG_ID_HEADER: event.id})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        services: list[Service] = []
        servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
        try:
            database_url = await create_database(self.postgres_url, random_database_name("vbedge_"))
            await migrate_all(database_url)
            self.database_url = database_url
            common: dict[str, Any] = {
                "nats_url": self.nats_url,
                "http_port": free_port(),
                "rpc_tenant_public_key": self.tenant_public_key,
            }
            audit, _ = build_audit(
                AuditSettings(database_url=database_url, instance_id="audit-edge", **common)
            )
            orchestrator, _ = build_orchestrator(
                OrchestratorSettings(
                    agents_dir=AGENTS_DIR,
                    instance_id="orch-edge",
                    database_url=database_url,
                    **common,
                ),
                environ={},
            )
            recorder, _ = build_recorder(
                RecorderSettings(
                    dir=self.recordings,
                    instance_id="rec-edge",
                    **common,
                    **self._recorder_overrides,
                )
            )
            campaigns, _ = build_campaigns(
                CampaignsSettings(database_url=database_url, instance_id="cmp-edge", **common)
            )
            for service in (audit, orchestrator, recorder, campaigns):
                await service.start()
                services.append(service)
            gateway = GatewaySettings(
                nats_url=self.nats_url,
                rpc_tenant_public_key=self.tenant_public_key,
                instance_id="gw-edge",
                http_port=self.gateway_port,
                public_url=f"http://127.0.0.1:{self.gateway_port}",
                ws_port=self.media_port,
                **self._gateway_overrides,
            )
            edge = EdgeSettings(
                nats_url=self.nats_url,
                database_url=database_url,
                instance_id="edge-e2e",
                http_port=self.port,
                admin_token=SecretStr(ADMIN),
                rpc_tenant_signing_key=self._signing_key,
                credentials_key=SecretStr(Fernet.generate_key().decode()),
                api_rate_limit_per_minute=100_000,
                retention_interval_s=1.0,  # the retention test waits for a round
                **self._edge_overrides,
            )
            for port, (_, app) in (
                (self.gateway_port, build_gateway(gateway)),
                (self.port, build_edge(edge)),
            ):
                config = uvicorn.Config(
                    app, host="127.0.0.1", port=port, lifespan="on", log_config=None
                )
                server = uvicorn.Server(config)
                task = asyncio.create_task(server.serve())
                servers.append((server, task))
                async with asyncio.timeout(60):
                    while not server.started:
                        if task.done():
                            raise RuntimeError(f"the server on port {port} did not start")
                        await asyncio.sleep(0.02)
            self.nc = await nats.connect(self.nats_url, name="edge-e2e")
            self._ready.set()
            await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            if self.nc is not None:
                await self.nc.drain()
            for server, task in reversed(servers):
                server.should_exit = True
                await asyncio.wait_for(task, timeout=30)
            # Concurrently: some services take seconds to stop (a pull fetch runs out).
            await asyncio.gather(*(service.stop() for service in services))
