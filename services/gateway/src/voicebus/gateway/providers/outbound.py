"""Outbound calling: what a provider plug-in implements to dial, and the values it returns.

Shared code (``dialing.py``, ``outbound_routes.py``) turns an originate command
into a :class:`DialRequest`, hands it to the provider's :class:`Dialer`, and
turns what the provider's :class:`OutboundWebhook` reads from its answer and
status callbacks into events. It never asks which provider carries the call.

The URLs in a :class:`DialRequest` carry the call's identity as signed query
parameters (``parameters.py``), so any gateway instance can serve a callback:
the provider's own signature is checked on top, with the tenant's credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from voicebus.contracts.events import AmdResult
from voicebus.gateway.providers.base import InboundCall
from voicebus.runtime.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class ProviderAccount:
    """One tenant's credentials and settings for one provider.

    Attributes:
        provider: provider name (``twilio``).
        tenant_id: owning tenant.
        secrets: credentials (auth token, API token, ...), never logged.
        fields: non-secret values: account id, caller id, REST base URL, ...
        allowed_countries: the tenant's destination allow-list (ISO 3166 alpha-2);
            None: anywhere.
        max_concurrent_calls: the tenant's cap on live calls; None: no cap.
    """

    provider: str
    tenant_id: str
    secrets: Mapping[str, SecretStr] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)
    allowed_countries: frozenset[str] | None = None
    max_concurrent_calls: int | None = None

    def secret(self, name: str) -> str:
        """The secret ``name`` in clear.

        Raises:
            ConfigurationError: the account has no such secret.
        """
        value = self.secrets.get(name)
        if value is None or not value.get_secret_value():
            raise ConfigurationError(f"{self.provider} account has no {name!r} credential")
        return value.get_secret_value()

    def get(self, name: str, default: str | None = None) -> str | None:
        """The non-secret field ``name``, or ``default``."""
        return self.fields.get(name) or default

    def require(self, name: str) -> str:
        """The non-secret field ``name``.

        Raises:
            ConfigurationError: the account has no such field.
        """
        value = self.fields.get(name)
        if not value:
            raise ConfigurationError(f"{self.provider} account has no {name!r} setting")
        return value


@dataclass(frozen=True, slots=True)
class DialRequest:
    """Everything a provider needs to place one outbound call.

    Attributes:
        call_id: voicebus call id (already announced in ``call.initiated``).
        tenant_id: owning tenant.
        agent_id: agent that will talk.
        to_number: number to dial, E.164. Personal data.
        from_number: caller id to present; None: the account's default.
        answer_url: fetched by the provider on answer; answers with the connect
            markup (signed stream parameters, exactly as the inbound path).
        status_url: the provider's status callbacks go here.
        stream_url: the media WebSocket URL with the signed stream parameters
            as its query, for providers that take a stream URL when dialing
            instead of fetching markup (Exotel ``calls/connect``).
        detect_machine: ask for answering-machine detection.
        amd_url: where asynchronous AMD results go (the status URL by default).
        ring_timeout_s: give up after ringing this long.
        context: call-context variables (already inside the signed URLs).
    """

    call_id: str
    tenant_id: str
    agent_id: str
    to_number: str
    from_number: str | None
    answer_url: str
    status_url: str
    stream_url: str
    detect_machine: bool = False
    amd_url: str | None = None
    ring_timeout_s: int = 30
    context: Mapping[str, str] = field(default_factory=dict)


class Dialer(Protocol):
    """A provider's REST API for one account: place, end and modify calls.

    Failures raise :class:`voicebus.runtime.errors.ProviderError` with the
    provider's error code in ``code`` and ``retryable`` decided once.
    """

    async def dial(self, request: DialRequest) -> str:
        """Place the call; returns the provider's call id."""
        ...

    async def hangup(self, provider_call_id: str) -> None:
        """End a live call."""
        ...

    async def transfer(
        self,
        provider_call_id: str,
        to_number: str,
        *,
        announcement: str | None = None,
        markup_url: str | None = None,
    ) -> None:
        """Connect the caller to ``to_number``; the media stream ends.

        ``announcement``, when given and supported, is said to the target before
        the caller is bridged (a whispered warm transfer). ``markup_url`` is the
        gateway's signed transfer route for this call and target (its
        :class:`TransferMarkup` answers there), for providers whose transfer API
        fetches markup from a URL; None when the provider has no such markup.
        """
        ...

    async def send_dtmf(self, provider_call_id: str, digits: str) -> bool:
        """Send keypad tones into the call through the provider's API.

        Returns:
            False when the provider cannot do so without ending the media
            stream; the gateway then plays the tones in-band on the stream.
        """
        ...

    async def aclose(self) -> None:
        """Release the HTTP client."""
        ...


class TransferMarkup(Protocol):
    """A provider's markup for a transfer, served on ``/telephony/<name>/transfer/{call_id}``.

    The route checks the signed query (call, target, announcement) and the
    provider's own request signature before asking for markup.
    """

    def dial(self, to_number: str, caller_id: str | None, whisper_url: str | None) -> Response:
        """Markup that bridges the call to ``to_number``.

        ``whisper_url`` (a warm transfer): where the target's leg fetches the
        announcement before it is bridged, for providers that can play one.
        """
        ...

    def whisper(self, announcement: str) -> Response:
        """Markup that says ``announcement`` to the target before the caller is bridged."""
        ...


class CallStatus(StrEnum):
    """A provider's call status, normalized."""

    INITIATED = "initiated"
    RINGING = "ringing"
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELED = "canceled"
    COMPLETED = "completed"
    MACHINE = "machine"
    HUMAN = "human"


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """What one status (or AMD) callback said.

    Attributes:
        status: the normalized status.
        provider_call_id: the provider's call id, if sent.
        error_code: the provider's error or hang-up cause code, if any.
        amd: the detailed AMD result (MACHINE / HUMAN statuses).
        detection_ms: AMD decision time, if sent.
    """

    status: CallStatus
    provider_call_id: str | None = None
    error_code: str | None = None
    amd: AmdResult | None = None
    detection_ms: int | None = None


class OutboundWebhook(Protocol):
    """Reads a provider's answer and status callbacks for outbound calls."""

    async def verify(self, request: Request, account: ProviderAccount) -> Mapping[str, str] | None:
        """The callback's parameters (query and form fields), or None if its
        signature (or Basic auth) does not check out with ``account``."""
        ...

    def answered(self, params: Mapping[str, str]) -> InboundCall:
        """The answered call described by a verified answer callback."""
        ...

    def status(self, params: Mapping[str, str]) -> StatusUpdate | None:
        """The status a verified callback reports; None for one that needs no action."""
        ...
