"""An inbound call's webhook, the same for every provider.

Signature check (by the provider) → agent lookup → ``call.initiated`` → the
provider's markup connecting the call to ``/ws/<provider>`` with signed
stream parameters. A bad signature gets 403 and a security ``call.error``; an
agent that cannot be used gets markup that says sorry and hangs up, and a
``call.error``. A named tenant whose account cannot be read now (the edge or its
database is down) gets 503 with ``Retry-After``: the provider retries or uses its
fallback URL, and nothing is refused for good. A named tenant whose live calls are
at its ``max_concurrent_calls`` gets the provider's busy refusal (no call starts).
"""

from __future__ import annotations

import logging
import time
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from voicebus.contracts.errors import InvalidTokenError
from voicebus.contracts.events import ErrorCode
from voicebus.contracts.ids import new_id
from voicebus.contracts.subjects import token
from voicebus.gateway.abuse import PerMinute
from voicebus.gateway.agents import Refusal, fetch_agent, judge
from voicebus.gateway.call_events import call_error, call_initiated
from voicebus.gateway.context import AccountsUnavailableError, Gateway, UnknownAccountError
from voicebus.gateway.metrics import SECURITY_SAMPLED, CallRefusal, count_call_refused
from voicebus.gateway.parameters import (
    CallIdentity,
    context_from_query,
    stream_purpose,
    to_parameters,
)
from voicebus.gateway.providers.base import InboundCall, InboundWebhook, Provider
from voicebus.runtime.errors import ConfigurationError

log = logging.getLogger(__name__)

SORRY: Final = "Sorry, we cannot take your call right now. Please try again later. Goodbye."
"""What a caller hears when the call cannot be connected to its agent."""
ACCOUNTS_UNAVAILABLE: Final = "the tenant's provider account cannot be read now; retry later\n"
"""Body of the 503 a webhook or callback gets while the tenant's account cannot be read."""


class InboundHandler:
    """``POST /telephony/<provider>/inbound/{agent_id}`` for one provider.

    Args:
        provider: the provider whose webhook this is.
        gateway: settings and the bus.
    """

    def __init__(self, provider: Provider, gateway: Gateway) -> None:
        self.provider = provider
        self.gateway = gateway
        self.webhook: InboundWebhook = provider.webhook(gateway.settings)
        self.refusals = PerMinute()

    async def __call__(
        self, request: Request, agent_id: str, tenant_id: str | None = None
    ) -> Response:
        """Answer one inbound webhook, for ``tenant_id`` (the default tenant when None).

        A named tenant's webhook is checked with that tenant's credentials
        (``Provider.tenant_webhook``); a tenant without an account gets 403.
        """
        source = request.client.host if request.client is not None else "unknown"
        if self.refusals.count(source) >= self.gateway.settings.failed_webhooks_per_ip_per_minute:
            SECURITY_SAMPLED.labels(self.provider.name).inc()
            return Response(status_code=429, headers={"Retry-After": "60"})
        webhook = self.webhook
        cap: int | None = None  # the default tenant's webhook uses no stored account
        if tenant_id is None:
            tenant_id = self.gateway.settings.default_tenant
        else:
            try:
                tenant = await self._tenant_webhook(tenant_id)
            except AccountsUnavailableError:
                return Response(ACCOUNTS_UNAVAILABLE, status_code=503, headers={"Retry-After": "5"})
            if tenant is None:
                await self._refused(source, self.gateway.settings.default_tenant, _NO_ACCOUNT)
                return Response(status_code=403)
            webhook, cap = tenant
        call = await webhook.accept(request)
        if call is None:
            await self._refused(source, tenant_id, _BAD_SIGNATURE)
            return Response(status_code=403)
        if not await self._first_use(call):
            await self._refused(source, tenant_id, _REPLAYED)
            return Response(status_code=403)
        call_id = new_id()
        refusal = await self._check_agent(tenant_id, agent_id)
        if refusal is not None:
            log.warning(
                "inbound call refused",
                extra={"call_id": call_id, "agent_id": agent_id, "code": refusal.code.value},
            )
            await self._error(tenant_id, call_id, refusal)
            return webhook.decline(SORRY)
        if not await self.gateway.admit(tenant_id, call_id, cap):
            count_call_refused(self.provider.name, CallRefusal.CONCURRENCY_LIMIT)
            log.warning("inbound call refused: concurrent-call limit",
                        extra={"call_id": call_id, "tenant_id": tenant_id})  # fmt: skip
            return webhook.busy()
        identity = CallIdentity(
            call_id=call_id,
            tenant_id=tenant_id,
            agent_id=agent_id,
            from_number=call.from_number,
            to_number=call.to_number,
            # Only what the signature covers: an unsigned query could be anyone's.
            context=context_from_query(request.query_params) if call.query_signed else {},
        )
        initiated = call_initiated(
            identity, self.provider.name, call.provider_call_id, self.gateway.source
        )
        await self.gateway.publish(initiated)
        log.info("inbound call accepted", extra={"call_id": call_id, "agent_id": agent_id})
        params = to_parameters(
            identity,
            self.gateway.stream_key,
            time.time(),
            purpose=stream_purpose(self.provider.name),
        )
        url = self.gateway.settings.media_ws_url(self.provider.stream_path)
        return webhook.connect(url, params)

    async def _refused(self, source: str, tenant_id: str, refusal: Refusal) -> None:
        """Count a refused webhook; record a security event for the first per source and
        minute only (the others are counted in ``voicebus_gateway_security_sampled_total``)."""
        if self.refusals.hit(source) > 1:
            SECURITY_SAMPLED.labels(self.provider.name).inc()
            return
        log.warning("webhook refused", extra={"provider": self.provider.name,
                                              "reason": refusal.message})  # fmt: skip
        await self._error(tenant_id, new_id(), refusal, security=True)

    async def _first_use(self, call: InboundCall) -> bool:
        nonces = self.gateway.nonces
        if call.nonce is None or nonces is None:
            return True
        return await nonces.first_use(self.provider.name, call.nonce)

    async def _tenant_webhook(self, tenant_id: str) -> tuple[InboundWebhook, int | None] | None:
        """The tenant's webhook and its ``max_concurrent_calls``; None: no account."""
        factory = self.provider.tenant_webhook
        if factory is None:
            return None
        try:
            token(tenant_id, "tenant id")
            account = await self.gateway.account(tenant_id, self.provider.name)
            return factory(self.gateway.settings, account), account.max_concurrent_calls
        except AccountsUnavailableError:
            raise
        except (InvalidTokenError, UnknownAccountError, ConfigurationError):
            return None

    async def _check_agent(self, tenant_id: str, agent_id: str) -> Refusal | None:
        try:
            token(agent_id, "agent id")
        except InvalidTokenError:
            return Refusal(ErrorCode.UNKNOWN_AGENT, "agent id is not a valid id", False)
        timeout = self.gateway.settings.agent_lookup_timeout_s
        reply = await fetch_agent(self.gateway.nc, tenant_id, agent_id, timeout)
        return judge(reply, agent_id)

    async def _error(
        self, tenant_id: str, call_id: str, refusal: Refusal, *, security: bool = False
    ) -> None:
        await self.gateway.publish(
            call_error(
                tenant_id,
                call_id,
                self.gateway.source,
                refusal.code,
                f"{self.provider.name}: {refusal.message}",
                security=security,
                retryable=refusal.retryable,
            )
        )


_NO_ACCOUNT: Final = Refusal(
    ErrorCode.SIGNATURE_INVALID, "inbound webhook for a tenant without an account", False
)
_BAD_SIGNATURE: Final = Refusal(
    ErrorCode.SIGNATURE_INVALID, "inbound webhook signature missing or invalid", False
)
_REPLAYED: Final = Refusal(
    ErrorCode.SIGNATURE_INVALID, "inbound webhook replayed (signature nonce already used)", False
)
