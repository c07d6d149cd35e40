"""Exotel's inbound call: the Voicebot applet's dynamic URL.

The applet's URL is ``https://<user>:<password>@<gateway>/telephony/exotel/inbound/<agent>``
(optionally with ``?ctx_<name>=<value>``): Exotel requests it when a call reaches
the applet (``CallSid``, ``From``, ``To``, ... in the query or form) and opens
the WebSocket URL the JSON answer names, ``{"url": "wss://..."}``. That URL
carries the signed stream parameters in its query and the Basic auth
credentials in its authority; the session reads the parameters from the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from voicebus.gateway.providers.base import InboundCall
from voicebus.gateway.providers.exotel.settings import (
    ExotelSettings,
    account_webhook_env,
    basic_auth_ok,
    exotel_settings,
    with_stream_credentials,
)
from voicebus.gateway.providers.outbound import ProviderAccount
from voicebus.gateway.settings import GatewaySettings

MAX_FORM_FIELDS: Final = 100


def _optional(value: object, max_chars: int = 64) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= max_chars:
        return value
    return None


async def request_params(request: Request) -> dict[str, str]:
    """Query and form fields of a request from Exotel (a form field wins)."""
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def call_of(params: Mapping[str, str]) -> InboundCall:
    """The call Exotel describes (``CallFrom``/``CallTo`` where ``From``/``To`` are absent)."""
    return InboundCall(
        provider_call_id=_optional(params.get("CallSid"), 128),
        from_number=_optional(params.get("From") or params.get("CallFrom")),
        to_number=_optional(params.get("To") or params.get("CallTo")),
    )


class ExotelWebhook:
    """Checks and answers ``GET|POST /telephony/exotel/inbound/{agent}``.

    Args:
        settings: the gateway's settings (environment, for the placeholder check).
        env: Basic auth credentials other than the gateway's (a tenant's).
    """

    def __init__(self, settings: GatewaySettings, env: ExotelSettings | None = None) -> None:
        self._env: ExotelSettings = env or exotel_settings(settings)

    async def accept(self, request: Request) -> InboundCall | None:
        """The call, or None when Basic auth does not carry our credentials."""
        if not basic_auth_ok(request.headers, self._env):
            return None
        return call_of(await request_params(request))

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> Response:
        """``{"url": <stream URL with credentials and the parameters as its query>}``."""
        url = with_stream_credentials(f"{stream_url}?{urlencode(dict(parameters))}")
        return JSONResponse({"url": url})

    def decline(self, message: str) -> Response:
        """No stream: Exotel's flow goes on to its failure path (the caller is not connected)."""
        return JSONResponse({"error": message}, status_code=404)

    def busy(self) -> Response:
        """Exotel's applet has no busy verb: no stream, so its flow takes its failure path."""
        return self.decline("busy: concurrent-call limit reached")


def tenant_webhook(settings: GatewaySettings, account: ProviderAccount) -> ExotelWebhook:
    """A tenant's applet URL, checked with its account's ``webhook_user``/``webhook_password``.

    Raises:
        ConfigurationError: the account has none (the gateway's are the default tenant's).
    """
    return ExotelWebhook(settings, account_webhook_env(account))
