"""Fakes for the REST edge's component tests: two fixed keys and a scripted bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
from fastapi import FastAPI
from fastapi.testclient import TestClient

from voicebus.contracts.commands import ControlCommand, OriginateCall
from voicebus.contracts.events import Envelope
from voicebus.edge.api import Edge, install_api
from voicebus.edge.api.auth import Authenticator, Principal
from voicebus.edge.api.bus import Owners
from voicebus.edge.api.console_session import ConsoleSession
from voicebus.edge.tenancy.credentials import CredentialCipher, fernet_keys
from voicebus.edge.tenancy.keys import ALL_SCOPES
from voicebus.edge.tenancy.store import TenantStore

OPERATOR = "operator-token-for-tests-5b1f"
TENANT_KEY = "vb_0123456789ab_" + "k" * 43
READ_ONLY_KEY = "vb_0123456789ac_" + "r" * 43


class FixedKeys(Authenticator):
    """Two known tenant keys instead of the database (the rest is the real authenticator)."""

    rate = 5

    async def authenticate(self, token: str) -> Principal:
        scopes = {TENANT_KEY: frozenset(ALL_SCOPES), READ_ONLY_KEY: frozenset({"calls:read"})}
        if token in scopes:
            await self._count(token[:15], self.rate)
            return Principal(tenant_id="acme", key_id=token[3:15], scopes=scopes[token])
        return await super().authenticate(token)

    async def authenticate_session(self, session: ConsoleSession) -> Principal:
        known = {
            TENANT_KEY[3:15]: frozenset(ALL_SCOPES),
            READ_ONLY_KEY[3:15]: frozenset({"calls:read"}),
        }
        if session.key_id in known:
            return Principal(tenant_id="acme", key_id=session.key_id, scopes=known[session.key_id])
        return await super().authenticate_session(session)


@dataclass(frozen=True)
class Reply:
    """A reply as nats-py's ``Msg`` carries it."""

    data: bytes


class FakeBus:
    """Answers requests from a table (or a handler per subject); records what it saw."""

    def __init__(self) -> None:
        self.replies: dict[str, bytes] = {}
        self.handlers: dict[str, Callable[[bytes], bytes]] = {}
        self.requests: list[tuple[str, bytes]] = []
        self.request_ids: list[str | None] = []
        self.silent: set[str] = set()
        self.originated: list[OriginateCall] = []
        self.controls: list[ControlCommand] = []
        self.published: list[Envelope] = []

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float = 0.5,
        old_style: bool = False,
        headers: dict[str, Any] | None = None,
    ) -> Reply:
        self.requests.append((subject, payload))
        self.request_ids.append((headers or {}).get("X-Request-Id"))
        if subject in self.silent:
            await asyncio.sleep(timeout)
            raise TimeoutError
        if subject in self.handlers:
            return Reply(self.handlers[subject](payload))
        if subject not in self.replies:
            raise nats.errors.NoRespondersError
        return Reply(self.replies[subject])

    async def originate(self, command: OriginateCall) -> None:
        self.originated.append(command)

    async def control(self, command: ControlCommand) -> None:
        self.controls.append(command)

    async def publish(self, event: Envelope) -> None:
        self.published.append(event)


class FakeStream:
    """:class:`FeedStream` of a fixed list of envelopes (then it ends, as on overflow)."""

    def __init__(self, envelopes: list[bytes]) -> None:
        self.envelopes = envelopes
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for envelope in self.envelopes:
            yield envelope

    async def close(self) -> None:
        self.closed = True


class FakeFeed:
    """:class:`EventFeed` whose streams replay the envelopes queued for their tenant."""

    def __init__(self) -> None:
        self.queued: dict[str, list[bytes]] = {}
        self.opened: list[FakeStream] = []

    async def open(self, tenant_id: str) -> FakeStream:
        stream = FakeStream(list(self.queued.get(tenant_id, [])))
        self.opened.append(stream)
        return stream


def edge_client(bus: FakeBus, rate: int = 5, live_streams_per_key: int = 10) -> TestClient:
    """The edge's routes on a bare FastAPI app: the fixed keys, ``bus``, no database."""
    store = TenantStore(CredentialCipher(fernet_keys("dev-secret")))  # no database bound
    auth = FixedKeys(store, OPERATOR, operator_rate_limit=100)
    auth.rate = rate
    edge = Edge(
        store=store,
        auth=auth,
        owners=Owners(bus, timeout_s=0.5),
        providers=frozenset({"twilio"}),
        source="edge/test",
        default_rate_limit=100,
        feed=FakeFeed(),
        live_streams_per_key=live_streams_per_key,
    )
    app = FastAPI(openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    install_api(app, edge)
    app.state.edge = edge  # tests reach the fakes (feed, keys) through it
    return TestClient(app)
