"""Webhooks and usage while the edge runs: the outbox store, the event ingester, the
dispatcher, created from the settings and started and stopped with the service."""

from __future__ import annotations

import httpx

from voicebus.edge.ingest import EventIngest, Routes
from voicebus.edge.settings import EdgeSettings
from voicebus.edge.tenancy.credentials import CredentialCipher, fernet_keys
from voicebus.edge.webhooks.dispatcher import Dispatcher
from voicebus.edge.webhooks.retries import RetryPolicy
from voicebus.edge.webhooks.sender import Sender
from voicebus.edge.webhooks.store import WebhookStore
from voicebus.runtime.errors import ConfigurationError
from voicebus.runtime.service import Service
from voicebus.runtime.ssrf import TargetPolicy


class WebhookRunner:
    """The edge's webhook deliveries and usage metering.

    Args:
        settings: the edge's settings.
    """

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        cipher = CredentialCipher(fernet_keys(settings.credentials_key.get_secret_value()))
        self.store = WebhookStore(cipher)
        self.routes = Routes(self.store, settings.webhooks_routes_ttl_s)
        self.policy = TargetPolicy(
            allow_loopback=settings.webhooks_allow_loopback,
            allow_private=settings.webhooks_allow_private_networks,
        )
        self.retries = RetryPolicy(
            max_attempts=settings.webhooks_max_attempts,
            base_s=settings.webhooks_retry_base_s,
            cap_s=settings.webhooks_retry_cap_s,
        )
        self._client: httpx.AsyncClient | None = None
        self.dispatcher: Dispatcher | None = None
        self._ingest: EventIngest | None = None

    def changed(self) -> None:
        """A subscription changed here: route the next batch by the new table."""
        self.routes.invalidate()

    def redelivered(self) -> None:
        """A delivery was put back in the outbox: look at it now."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    async def open(self, service: Service) -> None:
        """Connected hook: use the edge's database (its tables exist by now)."""
        if service.db is None:
            raise ConfigurationError("the edge needs VB_DATABASE_URL for webhooks and usage")
        self.store.bind(service.db)

    async def start(self, service: Service) -> None:
        """Start-up hook: the dispatcher, then the ingester."""
        s = self.settings
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_connections=s.webhooks_concurrency),
        )
        self.dispatcher = Dispatcher(
            self.store,
            Sender(self._client, self.policy, s.webhooks_timeout_s),
            self.retries,
            concurrency=s.webhooks_concurrency,
            poll_s=s.webhooks_poll_s,
            max_body_bytes=s.webhooks_max_body_bytes,
            lease_s=s.webhooks_timeout_s + 30,
            keep_s=s.webhooks_log_retention_days * 86_400,
        )
        self.dispatcher.start()
        self._ingest = EventIngest(
            lambda: self.store.engine,
            self.routes,
            budget=s.webhooks_max_attempts,
            on_enqueued=self.dispatcher.wake,
        )
        await self._ingest.start(service.nc, service.js)

    async def stop(self, _service: Service) -> None:
        """Shutdown hook: stop taking events, then finish deliveries in flight."""
        if self._ingest is not None:
            await self._ingest.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self._client is not None:
            await self._client.aclose()
