"""Outbound calls, the same for every provider: originate, answer and status callbacks.

- :meth:`Outbound.originate`: ``vb.cmd.call.originate`` → the tenant's account →
  ``call.initiated`` (outbound, with the command's context) → the provider's
  dialer. A provider that refuses the call yields ``call.error`` and
  ``call.ended`` (``provider_error`` with the provider's code), never an
  exception. A tenant at its ``max_concurrent_calls`` is not dialed: ``call.error``
  and ``call.ended`` (``concurrency_limit``, retryable).
- ``/telephony/<name>/answer/{call_id}``: the provider fetched our answer URL;
  it gets the connect markup with signed stream parameters, as an inbound
  call does, so ``call.started`` carries the tenant, agent, context and the
  call id chosen at originate time.
- ``/telephony/<name>/status/{call_id}``: ringing, busy, no answer, failed,
  AMD results → ``call.ringing``, ``call.ended``, ``amd.detected``.
- ``/telephony/<name>/transfer/{call_id}``: the provider's transfer API fetched
  the markup that dials the target named in the signed query (see
  ``transfers.py``), or the target's leg fetched the announcement.

A callback is checked with the tenant's account (its last known one while the edge is
down, see ``accounts.py``); one whose account cannot be read at all gets 503 with
``Retry-After``, not 403: nothing says it is forged.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable

from nats.js.errors import NotFoundError
from starlette.requests import Request
from starlette.responses import Response

from voicebus.contracts import subjects
from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.events import Envelope, ErrorCode
from voicebus.contracts.ids import new_id
from voicebus.contracts.streams import EVENTS
from voicebus.gateway.agents import Refusal, fetch_agent, judge
from voicebus.gateway.call_events import call_error, call_initiated
from voicebus.gateway.context import AccountsUnavailableError, Gateway, UnknownAccountError
from voicebus.gateway.destinations import destination_refusal
from voicebus.gateway.dialing import (
    callback_identity,
    dial_failed,
    dial_request,
    media_never_started,
    outbound_identity,
    over_concurrency_limit,
    refuse_agent,
    refuse_originate,
    status_events,
)
from voicebus.gateway.inbound import ACCOUNTS_UNAVAILABLE
from voicebus.gateway.metrics import DialResult, count_dial
from voicebus.gateway.parameters import (
    CallIdentity,
    InvalidStreamParametersError,
    stream_purpose,
    to_parameters,
)
from voicebus.gateway.providers import registry
from voicebus.gateway.providers.base import Provider
from voicebus.gateway.providers.outbound import (
    CallStatus,
    DialRequest,
    OutboundWebhook,
    ProviderAccount,
)
from voicebus.gateway.transfers import transfer_order, whisper_url
from voicebus.runtime.errors import ConfigurationError, ProviderError

log = logging.getLogger(__name__)

CALLER_ID_FIELD = "caller_id"
"""Account field with the number presented to callees when a command names none."""


class Outbound:
    """Places outbound calls and serves their callbacks.

    Args:
        gateway: settings, the bus and provider accounts.
    """

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._callbacks: dict[str, OutboundWebhook] = {}

    @property
    def source(self) -> str:
        """``source`` of the events published here."""
        return self.gateway.source

    async def originate(self, command: OriginateCall) -> None:
        """Dial the call ``command`` orders and report it with events."""
        gw = self.gateway
        if await self._stored(command.tenant_id, command.call_id, "call.initiated"):
            # A redelivered command (a gateway died before its ack): this call was already
            # handed to a provider, or was about to be. Dialing again could ring the callee
            # twice; a call whose dial never happened ends by its owner's timeout instead.
            log.warning("originate repeated: not dialed again", extra={"call_id": command.call_id})
            return
        name = command.data.provider or gw.settings.default_provider
        provider = _dialing_provider(name)
        if provider is None or provider.dialer is None:
            dialable = [p.name for p in registry.providers() if p.dialer is not None]
            await self._publish_all(refuse_originate(command, self.source, dialable))
            count_dial("unknown", DialResult.REFUSED_PROVIDER)  # ``name`` came from the command
            log.warning("originate refused", extra={"call_id": command.call_id, "provider": name})
            return
        refusal = await self._check_agent(command)
        if refusal is not None:
            message = f"cannot dial for agent {command.data.agent_id!r}: {refusal.message}"
            events = refuse_agent(
                command, self.source, refusal.code, message, retryable=refusal.retryable
            )
            await self._publish_all(events)
            count_dial(name, DialResult.REFUSED_AGENT)
            log.warning("originate refused: agent", extra={"call_id": command.call_id})
            return
        try:
            account = await gw.account(command.tenant_id, name)
        except UnknownAccountError as err:
            error = ProviderError(str(err), retryable=err.retryable, provider=name)
            await self._publish_all(dial_failed(command, error, self.source))
            count_dial(name, DialResult.NO_ACCOUNT)
            log.warning("originate without account", extra={"call_id": command.call_id})
            return
        refused = destination_refusal(command.data.to_number, account.allowed_countries)
        if refused is not None:  # toll-fraud guard: the tenant's destination allow-list
            error = ProviderError(
                refused, retryable=False, provider=name, code="destination_not_allowed"
            )
            await self._publish_all(dial_failed(command, error, self.source))
            log.warning("originate refused: destination", extra={"call_id": command.call_id})
            return
        cap, ring_s = account.max_concurrent_calls, command.data.ring_timeout_s
        if not await gw.admit(command.tenant_id, command.call_id, cap, ring_s):
            await self._publish_all(over_concurrency_limit(command, self.source))
            count_dial(name, DialResult.REFUSED_CONCURRENCY)
            log.warning("originate refused: concurrent-call limit",
                        extra={"call_id": command.call_id})  # fmt: skip
            return
        from_number = command.data.from_number or account.get(CALLER_ID_FIELD)
        identity = outbound_identity(command, from_number)
        request = dial_request(command, provider, gw.settings, from_number, time.time())
        await gw.publish(call_initiated(identity, name, None, self.source))
        try:
            provider_call_id = await _dial(provider, account, request)
        except (ProviderError, ConfigurationError) as err:
            failure = err if isinstance(err, ProviderError) else _config_failure(err, name)
            await self._publish_all(dial_failed(command, failure, self.source))
            count_dial(name, DialResult.FAILED)
            log.warning(
                "dial failed",
                extra={"call_id": command.call_id, "provider": name, "code": failure.code,
                       "status": failure.status, "retryable": failure.retryable},
            )  # fmt: skip
            return
        count_dial(name, DialResult.DIALED)
        log.info(
            "call dialed",
            extra={
                "call_id": command.call_id,
                "provider": name,
                "provider_call_id": provider_call_id,
            },
        )

    async def _check_agent(self, command: OriginateCall) -> Refusal | None:
        """Why the agent cannot take the call, if the orchestrator says so.

        An unavailable lookup says nothing about the agent: the call is dialed (the
        orchestrator may be restarting; it claims the call once media starts).
        """
        timeout = self.gateway.settings.agent_lookup_timeout_s
        agent_id = command.data.agent_id
        reply = await fetch_agent(self.gateway.nc, command.tenant_id, agent_id, timeout)
        return None if reply is None else judge(reply, agent_id)

    async def answer(self, provider: Provider, request: Request, call_id: str) -> Response:
        """The connect markup for an answered outbound call (403 if the callback is not genuine)."""
        verified = await self._verify(provider, request, call_id)
        if isinstance(verified, Response):
            return verified
        identity, params = verified
        call = self._webhook(provider).answered(params)
        identity = dataclasses.replace(
            identity, from_number=call.from_number, to_number=call.to_number
        )
        settings = self.gateway.settings
        stream_params = to_parameters(
            identity, self.gateway.stream_key, time.time(), purpose=stream_purpose(provider.name)
        )
        url = settings.media_ws_url(provider.stream_path)
        log.info("outbound call answered", extra={"call_id": call_id, "provider": provider.name})
        return provider.webhook(settings).connect(url, stream_params)

    async def status(self, provider: Provider, request: Request, call_id: str) -> Response:
        """Turn a status or AMD callback into events."""
        verified = await self._verify(provider, request, call_id)
        if isinstance(verified, Response):
            return verified
        identity, params = verified
        update = self._webhook(provider).status(params)
        if update is not None:
            events = status_events(identity, update, self.source)
            if update.status is CallStatus.COMPLETED and not await self._started(identity):
                events.append(media_never_started(identity, update, self.source))
            await self._publish_all(events)
            log.info(
                "call status",
                extra={"call_id": call_id, "provider": provider.name, "status": update.status},
            )
        return Response(status_code=200)

    async def transfer(self, provider: Provider, request: Request, call_id: str) -> Response:
        """The provider's markup for a transfer its API fetches (403 if not genuine).

        The signed query names the call, the target and the announcement; with
        ``vb_part=whisper`` the target's leg fetches the announcement itself.
        """
        gw = self.gateway
        try:
            order = transfer_order(request.query_params, call_id, gw.stream_key, time.time())
        except InvalidStreamParametersError as err:
            return await self._forbidden(provider, gw.settings.default_tenant, new_id(), str(err))
        checked = await self._signed_by_provider(provider, request, order.call.tenant_id, call_id)
        if isinstance(checked, Response):
            return checked
        account = checked[0]
        assert provider.transfer_markup is not None  # the route exists only for such providers
        markup = provider.transfer_markup(gw.settings)
        if order.whisper:
            if order.announcement is None:
                return Response(status_code=404)
            return markup.whisper(order.announcement)
        whisper = None
        if order.announcement:
            here = gw.settings.public_http_url(request.url.path)
            whisper = whisper_url(f"{here}?{request.url.query}")
        log.info(
            "transfer markup served",
            extra={"call_id": call_id, "provider": provider.name, "warm": whisper is not None},
        )
        return markup.dial(order.to_number, account.get(CALLER_ID_FIELD), whisper)

    async def _started(self, identity: CallIdentity) -> bool:
        """Whether ``call.started`` of the call is stored (its media session reports the end)."""
        return await self._stored(identity.tenant_id, identity.call_id, "call.started")

    async def _stored(self, tenant_id: str, call_id: str, event_name: str) -> bool:
        """Whether an event named ``event_name`` of the call is in ``VB_EVENTS``."""
        subject = subjects.evt(tenant_id, call_id, event_name)
        try:
            await self.gateway.nc.jetstream().get_last_msg(EVENTS.name, subject)
        except NotFoundError:
            return False
        return True

    async def _verify(
        self, provider: Provider, request: Request, call_id: str
    ) -> tuple[CallIdentity, dict[str, str]] | Response:
        gw = self.gateway
        try:
            identity = callback_identity(request.query_params, call_id, gw.stream_key, time.time())
        except InvalidStreamParametersError as err:
            return await self._forbidden(provider, gw.settings.default_tenant, new_id(), str(err))
        checked = await self._signed_by_provider(provider, request, identity.tenant_id, call_id)
        if isinstance(checked, Response):
            return checked
        return identity, checked[1]

    async def _signed_by_provider(
        self, provider: Provider, request: Request, tenant_id: str, call_id: str
    ) -> tuple[ProviderAccount, dict[str, str]] | Response:
        """The tenant's account and the request's parameters, if the provider signed it."""
        try:
            account = await self.gateway.account(tenant_id, provider.name)
        except AccountsUnavailableError:
            # Not a forgery: the account cannot be read now (the edge is down and has
            # not answered for this tenant lately). The provider may retry.
            log.warning("callback not checked: account unavailable",
                        extra={"provider": provider.name, "call_id": call_id})  # fmt: skip
            return Response(ACCOUNTS_UNAVAILABLE, status_code=503, headers={"Retry-After": "5"})
        except UnknownAccountError as err:
            return await self._forbidden(provider, tenant_id, call_id, str(err))
        params = await self._webhook(provider).verify(request, account)
        if params is None:
            message = "callback signature missing or invalid"
            return await self._forbidden(provider, tenant_id, call_id, message)
        return account, dict(params)

    async def _forbidden(
        self, provider: Provider, tenant_id: str, call_id: str, why: str
    ) -> Response:
        log.warning("callback refused", extra={"provider": provider.name, "why": why})
        message = f"{provider.name}: callback refused: {why}"
        await self.gateway.publish(
            call_error(
                tenant_id, call_id, self.source, ErrorCode.SIGNATURE_INVALID, message, security=True
            )
        )
        return Response(status_code=403)

    def _webhook(self, provider: Provider) -> OutboundWebhook:
        webhook = self._callbacks.get(provider.name)
        if webhook is None:
            assert provider.callbacks is not None  # routes exist only for such providers
            webhook = self._callbacks[provider.name] = provider.callbacks(self.gateway.settings)
        return webhook

    async def _publish_all(self, events: Iterable[Envelope]) -> None:
        for event in events:
            await self.gateway.publish(event)


async def _dial(provider: Provider, account: ProviderAccount, request: DialRequest) -> str:
    assert provider.dialer is not None
    dialer = provider.dialer(account)
    try:
        return await dialer.dial(request)
    finally:
        await dialer.aclose()


def _dialing_provider(name: str) -> Provider | None:
    try:
        return registry.get(name)
    except KeyError:
        return None


def _config_failure(err: ConfigurationError, provider: str) -> ProviderError:
    return ProviderError(f"{provider}: {err}", retryable=False, provider=provider)
