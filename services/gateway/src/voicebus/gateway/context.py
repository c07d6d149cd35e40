"""What the gateway's HTTP and WebSocket handlers share: settings, the bus, provider accounts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from nats.aio.client import Client

from voicebus.contracts.events import CallEnded, Envelope
from voicebus.gateway.call_leases import Close, LiveCalls
from voicebus.gateway.call_slots import CallSlots
from voicebus.gateway.providers import registry
from voicebus.gateway.providers.outbound import ProviderAccount
from voicebus.gateway.settings import GatewaySettings
from voicebus.gateway.webhook_nonces import Nonces
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)


class UnknownAccountError(LookupError):
    """No credentials for this tenant and provider."""

    retryable = False


class AccountsUnavailableError(UnknownAccountError):
    """The tenant's stored credentials cannot be read now (the edge does not answer)."""

    retryable = True


class AccountStore(Protocol):
    """Tenants' stored provider credentials (the edge's, asked over the bus)."""

    async def get(self, tenant_id: str, provider: str) -> ProviderAccount | None:
        """The tenant's account with ``provider``, or None if it has none stored.

        Raises:
            AccountsUnavailableError: the store cannot be read now.
        """
        ...


@dataclass(frozen=True, slots=True)
class Gateway:
    """The running gateway as its handlers see it.

    Attributes:
        service: the service kit (connections are usable once it started).
        settings: the gateway's settings.
        accounts: tenants' stored provider credentials (asked of the edge); None:
            the environment's account of the default tenant only.
        leases: this instance's call leases (``gateway.<call>`` in ``vb_call_owners``),
            held while a call's media stream is up, so the calls of a gateway that
            died are ended as ``gateway_lost`` within the lease TTL; None: no leases.
        nonces: signature nonces seen (replayed signed webhooks are refused); None:
            no replay guard.
        slots: tenants' concurrent-call slots (``vb_call_slots``); None: no caps.
    """

    service: Service
    settings: GatewaySettings
    accounts: AccountStore | None = None
    leases: LiveCalls | None = None
    nonces: Nonces | None = None
    slots: CallSlots | None = None

    async def account(self, tenant_id: str, provider: str) -> ProviderAccount:
        """The credentials ``tenant_id`` uses with ``provider``.

        The tenant's stored account when there is one; otherwise, for the
        default tenant only, the provider's environment settings (also while the
        stored accounts cannot be read: the default tenant keeps calling when the
        edge is down).

        Raises:
            AccountsUnavailableError: another tenant's account cannot be read now.
            UnknownAccountError: neither exists (or the provider is not registered).
        """
        try:
            plugin = registry.get(provider)
        except KeyError:
            raise UnknownAccountError(f"no telephony provider {provider!r}") from None
        unavailable: AccountsUnavailableError | None = None
        if self.accounts is not None:
            try:
                stored = await self.accounts.get(tenant_id, provider)
            except AccountsUnavailableError as err:
                unavailable = err
            else:
                if stored is not None:
                    return stored
        if tenant_id != self.settings.default_tenant or plugin.default_account is None:
            if unavailable is not None:
                raise unavailable
            raise UnknownAccountError(f"tenant has no {provider} account")
        if unavailable is not None:
            log.warning("stored accounts unavailable: environment account used",
                        extra={"provider": provider})  # fmt: skip
        return plugin.default_account(self.settings, tenant_id)

    @property
    def nc(self) -> Client:
        """Raw NATS client: audio frames, playback marks, control commands, requests."""
        return self.service.nc

    @property
    def source(self) -> str:
        """``gateway/<instance>``: the ``source`` of the events this gateway publishes."""
        return self.settings.connection_name

    @property
    def stream_key(self) -> bytes:
        """Key that signs stream parameters."""
        return self.settings.stream_secret.get_secret_value().encode()

    async def publish(self, event: Envelope) -> None:
        """Store ``event`` in ``VB_EVENTS`` (waits for the server's ack).

        A ``call.ended`` frees the call's concurrent-call slot if this instance holds it:
        every way a call ends here (hang-up, failed dial, busy) is published through this.
        """
        await publish_event(self.service.broker, event)
        if isinstance(event, CallEnded) and self.slots is not None:
            await self.slots.release(event.call_id)

    async def admit(
        self, tenant_id: str, call_id: str, cap: int | None, ring_s: float = 0.0
    ) -> bool:
        """Whether the call fits under the tenant's ``max_concurrent_calls`` (``cap``).

        True takes one of the tenant's slots until the call's ``call.ended``, or until
        its media stream can no longer start (``ring_s`` of ringing, then the stream
        token's life).
        """
        if self.slots is None:
            return True
        start_within_s = ring_s + self.settings.stream_token_ttl_s
        return await self.slots.admit(tenant_id, call_id, cap, start_within_s)

    async def hold(self, call_id: str, close: Close) -> None:
        """Take the call's lease as its media stream starts (before ``call.started``).

        ``close`` ends the stream if the platform ended the call while this gateway
        was cut off from NATS for longer than the lease.
        """
        if self.leases is not None:
            await self.leases.hold(call_id, close)

    async def let_go(self, call_id: str) -> None:
        """Release the call's lease once its ``call.ended`` is stored."""
        if self.leases is not None:
            await self.leases.let_go(call_id)
