"""What the REST API's routes share."""

from __future__ import annotations

from dataclasses import dataclass, field

from voicebus.contracts.telephony import TELEPHONY_PROVIDERS
from voicebus.edge.api.auth import Authenticator
from voicebus.edge.api.bus import Owners, ServiceBus
from voicebus.edge.api.call_slots import CallSlotsView
from voicebus.edge.api.console_session import SessionSigner
from voicebus.edge.api.feed import EventFeed, NatsEventFeed
from voicebus.edge.api.live_audio import LiveAudio, NatsLiveAudio
from voicebus.edge.api.ratelimit import ClientLimiter
from voicebus.edge.api.shared_limits import SharedRateLimiter
from voicebus.edge.settings import EdgeSettings
from voicebus.edge.tenancy.accounts import DEFAULT_API_HOSTS
from voicebus.edge.tenancy.store import TenantStore
from voicebus.edge.webhooks.store import WebhookStore
from voicebus.runtime.service import Service
from voicebus.runtime.settings import Environment


@dataclass(frozen=True, slots=True)
class Edge:
    """The REST API's collaborators.

    Attributes:
        store: tenants, keys and provider accounts.
        auth: bearer authentication, scopes and rate limits.
        owners: request/reply to the services owning the data (and the command queue).
        providers: telephony provider names a tenant may store an account for and dial.
        source: ``edge/<instance>``, the ``source`` of commands it sends.
        default_rate_limit: requests per minute of a key created without one.
        feed: the tenants' live events (``/events/stream``).
        provider_api_hosts: hosts the operator may point an account's ``api_base_url`` at.
        call_limiter: counts each tenant's placed calls against its calls per minute.
        call_slots: the tenants' concurrent-call slots held by the gateways (a hint).
        cookie_secure: Secure console cookies (None: when the request is HTTPS).
        live_streams_per_key: live feeds one key may hold open at once (per instance).
        live_audio: live calls' audio and supervision events (None: no live supervision).
        webhook_log: the webhook outbox and delivery log, for a caller's erasure (None: no
            webhooks on this edge).
    """

    store: TenantStore
    auth: Authenticator
    owners: Owners
    providers: frozenset[str]
    source: str
    default_rate_limit: int
    feed: EventFeed
    provider_api_hosts: frozenset[str] = frozenset(DEFAULT_API_HOSTS)
    call_limiter: SharedRateLimiter = field(default_factory=SharedRateLimiter)
    call_slots: CallSlotsView = field(default_factory=CallSlotsView)
    cookie_secure: bool | None = None
    live_streams_per_key: int = 10
    simulation_timeout_s: float = 120.0
    live_audio: LiveAudio | None = None
    webhook_log: WebhookStore | None = None

    @classmethod
    def build(
        cls,
        service: Service,
        settings: EdgeSettings,
        store: TenantStore,
        webhook_log: WebhookStore | None = None,
    ) -> Edge:
        """The REST API of the edge service: its bus connections and settings."""
        shared = SharedRateLimiter()
        service.on_connected(shared.open)
        slots = CallSlotsView()
        service.on_connected(slots.open)
        auth = Authenticator(
            store,
            settings.admin_token.get_secret_value(),
            operator_rate_limit=settings.api_rate_limit_per_minute,
            clients=ClientLimiter(settings.unauthenticated_per_ip_per_minute),
            shared=shared,
            sessions=SessionSigner(
                settings.session_secret.get_secret_value(),
                ttl_s=settings.session_ttl_s,
                operator_token=settings.admin_token.get_secret_value(),
            ),
        )
        return cls(
            store=store,
            auth=auth,
            owners=Owners(ServiceBus(service), settings.rpc_timeout_s, settings.tenant_signer),
            providers=TELEPHONY_PROVIDERS,
            source=settings.connection_name,
            default_rate_limit=settings.api_rate_limit_per_minute,
            provider_api_hosts=frozenset(settings.provider_api_hosts),
            call_limiter=shared,
            call_slots=slots,
            feed=NatsEventFeed(lambda: service.nc),
            live_streams_per_key=settings.live_streams_per_key,
            simulation_timeout_s=settings.simulation_timeout_s,
            live_audio=NatsLiveAudio(lambda: service.nc, lambda: service.broker),
            webhook_log=webhook_log,
            cookie_secure=(
                settings.session_cookie_secure
                if settings.session_cookie_secure is not None
                else (True if settings.environment is Environment.PRODUCTION else None)
            ),
        )
