"""What the REST edge's routes share."""

from __future__ import annotations

from dataclasses import dataclass

from voicebus.gateway.api.auth import Authenticator
from voicebus.gateway.api.bus import GatewayBus, Owners
from voicebus.gateway.context import Gateway
from voicebus.gateway.providers import providers
from voicebus.gateway.tenancy.store import TenantStore


@dataclass(frozen=True, slots=True)
class Edge:
    """The REST edge's collaborators.

    Attributes:
        store: tenants, keys and provider accounts.
        auth: bearer authentication, scopes and rate limits.
        owners: request/reply to the services owning the data (and the command queue).
        providers: registered telephony provider names.
        source: ``gateway/<instance>``, the ``source`` of commands it sends.
        default_rate_limit: requests per minute of a key created without one.
    """

    store: TenantStore
    auth: Authenticator
    owners: Owners
    providers: frozenset[str]
    source: str
    default_rate_limit: int

    @classmethod
    def build(cls, gateway: Gateway, store: TenantStore) -> Edge:
        """The edge of a running gateway: its bus connections, settings and providers."""
        settings = gateway.settings
        auth = Authenticator(
            store,
            settings.admin_token.get_secret_value(),
            operator_rate_limit=settings.api_rate_limit_per_minute,
        )
        return cls(
            store=store,
            auth=auth,
            owners=Owners(GatewayBus(gateway), settings.rpc_timeout_s),
            providers=frozenset(p.name for p in providers()),
            source=settings.connection_name,
            default_rate_limit=settings.api_rate_limit_per_minute,
        )
