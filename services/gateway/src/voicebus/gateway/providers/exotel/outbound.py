"""Exotel outbound calls: Connect Voice AI (``calls/connect``) over plain HTTP.

Exotel has no official Python SDK; the API is a form POST with the account's
API key and token as Basic auth. ``calls/connect`` dials ``from`` and, once the
call is answered, opens the bidirectional stream at ``streamurl`` (ours, with
the signed stream parameters and our Basic auth credentials), so there is no
answer markup. Status callbacks (``ringing``, ``answered``, ``terminal``) come as
form posts to ``statuscallback``, authenticated by the credentials in its URL.

Exotel's Voicebot has no API to transfer or to send keypad tones on a live
call: a transfer is reported as a provider error and tones are played in-band.
It has no answering-machine detection either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx
from starlette.requests import Request

from voicebus.gateway.providers.base import InboundCall
from voicebus.gateway.providers.exotel.settings import (
    NAME,
    account_webhook_env,
    basic_auth_ok,
    with_credentials,
    with_stream_credentials,
)
from voicebus.gateway.providers.exotel.webhook import call_of, request_params
from voicebus.gateway.providers.outbound import (
    CallStatus,
    DialRequest,
    ProviderAccount,
    StatusUpdate,
)
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.errors import ConfigurationError, ProviderError

REST_TIMEOUT_S: Final = 10.0
MAX_TIME_LIMIT_S: Final = 14400

STATUSES: Final = {
    "queued": CallStatus.INITIATED,
    "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.ANSWERED,
    "answered": CallStatus.ANSWERED,
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
    "failed": CallStatus.FAILED,
    "canceled": CallStatus.CANCELED,
    "completed": CallStatus.COMPLETED,
}
"""Exotel ``Status`` / ``EventType`` values → normalized status."""


def status_of(params: Mapping[str, str]) -> StatusUpdate | None:
    """A status callback's fields → the normalized status (None: nothing we know)."""
    event = params.get("EventType", "").lower()
    word = event if event in ("ringing", "answered") else params.get("Status", "").lower()
    status = STATUSES.get(word)
    if status is None:
        return None
    return StatusUpdate(status, params.get("CallSid") or None)


def _error_code(response: httpx.Response) -> str | None:
    """Exotel's error code from a failed response (``RestException.Code`` or ``code``)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    inner = body.get("RestException") or body.get("error") or body
    code = inner.get("Code") or inner.get("code") if isinstance(inner, dict) else None
    return str(code) if code is not None else None


def _call_sid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    call = body.get("call") or body.get("Call")
    sid = (call.get("sid") or call.get("Sid")) if isinstance(call, dict) else None
    return sid if isinstance(sid, str) and sid else None


class ExotelDialer:
    """``calls/connect`` for one account.

    Raises:
        ConfigurationError: the account has no SID, API key or token.
    """

    def __init__(
        self, account: ProviderAccount, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._sid = account.require("account_id")
        self._caller_id = account.get("caller_id")
        base = (account.get("api_base_url") or "https://api.exotel.com").rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=base,
            auth=(account.require("api_key"), account.secret("api_token")),
            timeout=REST_TIMEOUT_S,
            trust_env=False,
            transport=transport,
        )
        # The account's own webhook credentials go into the status URL Exotel calls.
        self._env = account_webhook_env(account)

    async def dial(self, request: DialRequest) -> str:
        """Dial and stream; returns Exotel's call SID."""
        form: dict[str, str | list[str]] = {
            "from": request.to_number,
            "callerid": request.from_number or self._caller_id or "",
            "streamurl": with_stream_credentials(request.stream_url),
            "streamtype": "bidirectional",
            "statuscallback": with_credentials(request.status_url, self._env),
            "statuscallbackevents[]": ["ringing", "answered", "terminal"],
            "customfield": request.call_id[:128],
        }
        try:
            response = await self._http.post(f"/v1/accounts/{self._sid}/calls/connect", data=form)
        except httpx.HTTPError as err:
            raise ProviderError(
                f"{NAME}: dial: {type(err).__name__}", retryable=True, provider=NAME
            ) from None
        if response.status_code >= 400:
            raise ProviderError.from_status(
                response.status_code, provider=NAME, message="dial", code=_error_code(response)
            )
        try:
            sid = _call_sid(response.json())
        except ValueError:  # not JSON
            sid = None
        if sid is None:
            raise ProviderError(
                f"{NAME}: dial: no call sid in the answer", retryable=False, provider=NAME
            )
        return sid

    async def hangup(self, provider_call_id: str) -> None:
        """Not offered for Voicebot calls: the gateway ends the stream instead."""
        raise ProviderError(f"{NAME}: hang-up by API is not supported", retryable=False)

    async def transfer(
        self,
        provider_call_id: str,
        to_number: str,
        *,
        announcement: str | None = None,
        markup_url: str | None = None,
    ) -> None:
        """Not offered by Exotel's Voicebot (see the module docstring)."""
        raise ProviderError(f"{NAME}: transfer is not supported", retryable=False, provider=NAME)

    async def send_dtmf(self, provider_call_id: str, digits: str) -> bool:
        """Not offered: the gateway plays the tones in-band."""
        return False

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()


class ExotelCallbacks:
    """Checks (Basic auth) and reads Exotel's status callbacks."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings

    async def verify(self, request: Request, account: ProviderAccount) -> Mapping[str, str] | None:
        """The callback's fields when Basic auth carries the account's webhook credentials."""
        try:
            env = account_webhook_env(account)
        except ConfigurationError:
            return None
        if not basic_auth_ok(request.headers, env):
            return None
        return await request_params(request)

    def answered(self, params: Mapping[str, str]) -> InboundCall:
        """Exotel fetches no answer markup for ``calls/connect``; kept for completeness."""
        return call_of(params)

    def status(self, params: Mapping[str, str]) -> StatusUpdate | None:
        """See :func:`status_of`."""
        return status_of(params)
