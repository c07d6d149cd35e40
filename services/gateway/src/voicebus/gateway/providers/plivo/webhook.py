"""Plivo's answer webhook: ``X-Plivo-Signature-V3`` check and Plivo XML answers.

Plivo V3 signs, with HMAC-SHA256 keyed by the Auth Token, the full URL it
requested followed by the sorted POST parameters, a dot and the nonce it sends
in ``X-Plivo-Signature-V3-Nonce``; the plivo SDK's validator does the check.
Behind a proxy or tunnel the URL this process sees is not the one Plivo
requested, so the configured public URL is used.

Plivo's ``extraHeaders`` only carry ``[A-Za-z0-9]`` (512 bytes): too narrow for
all our signed stream parameters, which travel in the stream URL's query string,
but wide enough for the token that signs them: it goes in ``extraHeaders`` and
comes back in the stream's ``start`` message, so the URL (which proxies log)
carries no credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlencode

from plivo import plivoxml
from plivo.exceptions import ValidationError as PlivoValidationError
from plivo.utils import validate_v3_signature
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from voicebus.gateway.parameters import TOKEN
from voicebus.gateway.providers.base import InboundCall
from voicebus.gateway.providers.outbound import ProviderAccount
from voicebus.gateway.providers.plivo.settings import PlivoSettings
from voicebus.gateway.providers.plivo.stream import token_header
from voicebus.gateway.settings import GatewaySettings

SIGNATURE_HEADER: Final = "X-Plivo-Signature-V3"
NONCE_HEADER: Final = "X-Plivo-Signature-V3-Nonce"
XML_MEDIA_TYPE: Final = "application/xml"
MAX_FORM_FIELDS: Final = 200
"""Plivo's answer webhook sends a few dozen parameters; more is not Plivo."""


def optional(value: object, max_chars: int = 64) -> str | None:
    """A form value, or None when absent, empty or too long for the call events."""
    if isinstance(value, str) and 0 < len(value) <= max_chars:
        return value
    return None


_BARE_E164: Final = re.compile(r"[1-9][0-9]{1,14}")


def phone(value: object) -> str | None:
    """A number from a form value, in E.164 when it is one without its ``+``.

    Plivo and Vobiz send numbers as bare digits (``14155550100``); SIP URIs and
    other values pass through unchanged.
    """
    number = optional(value)
    if number is not None and _BARE_E164.fullmatch(number):
        return f"+{number}"
    return number


def stream_url(base: str, parameters: Mapping[str, str]) -> str:
    """The media WebSocket URL with the stream parameters in its query string."""
    return f"{base}?{urlencode(sorted(parameters.items()))}" if parameters else base


async def form_params(request: Request) -> dict[str, str | list[str]] | None:
    """The POST form as the plivo validator reads it (repeated names as lists), or None.

    None for a file upload or too many fields: not a Plivo webhook.
    """
    try:
        form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    except ValueError:  # starlette's MultiPartException and limits are ValueErrors
        return None
    params: dict[str, str | list[str]] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            return None
        previous = params.get(name)
        if previous is None:
            params[name] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            params[name] = [previous, value]
    return params


class PlivoWebhook:
    """Checks and answers ``POST /telephony/plivo/inbound/{agent}``.

    Args:
        settings: the gateway's settings (public URL, environment).
        plivo: the Plivo account; read from ``VB_GATEWAY_PLIVO_*`` when omitted.
    """

    def __init__(self, settings: GatewaySettings, plivo: PlivoSettings | None = None) -> None:
        self._settings = settings
        self._plivo = (plivo or PlivoSettings()).checked(settings.environment)

    def signed_url(self, request: Request) -> str:
        """The URL Plivo signed: the public base URL, this path, and the query string."""
        url = self._settings.public_http_url(request.url.path)
        query = request.url.query
        return f"{url}?{query}" if query else url

    async def verify(self, request: Request) -> dict[str, str | list[str]] | None:
        """The webhook's parameters when its V3 signature is valid, else None.

        A POST's parameters are its form; a GET's (``answer_method="GET"``) are its query.
        """
        signature = request.headers.get(SIGNATURE_HEADER)
        nonce = request.headers.get(NONCE_HEADER)
        if not signature or not nonce:
            return None
        get = request.method == "GET"
        params = {} if get else await form_params(request)
        if params is None:
            return None
        try:
            valid = validate_v3_signature(
                "GET" if get else "POST",
                self.signed_url(request),
                nonce,
                self._plivo.auth_token.get_secret_value(),
                signature,
                dict(params),  # the validator adds the URL's query parameters to it
            )
        except PlivoValidationError:  # an argument the SDK refuses (not a URL, not text)
            return None
        if not valid:
            return None
        return dict(request.query_params) if get else params

    async def accept(self, request: Request) -> InboundCall | None:
        """The call a webhook describes, or None when ``X-Plivo-Signature-V3`` does not match."""
        params = await self.verify(request)
        if params is None:
            return None
        return InboundCall(
            provider_call_id=optional(params.get("CallUUID"), 128),
            from_number=phone(params.get("From")),
            to_number=phone(params.get("To")),
            nonce=request.headers.get(NONCE_HEADER),
        )

    def connect(self, stream_url_: str, parameters: Mapping[str, str]) -> Response:
        """A bidirectional ``<Stream>`` that keeps the call up while the stream runs.

        The stream token goes in ``extraHeaders``, the other parameters in the URL.
        """
        token = parameters.get(TOKEN)
        in_url = {k: v for k, v in parameters.items() if k != TOKEN}
        response = plivoxml.ResponseElement()
        response.add(
            plivoxml.StreamElement(
                stream_url(stream_url_, in_url),
                bidirectional=True,
                keepCallAlive=True,
                audioTrack="inbound",
                contentType=self._plivo.content_type,
                extraHeaders=token_header(token) if token else None,
            )
        )
        return _xml(response)

    def decline(self, message: str) -> Response:
        """Plivo XML that speaks ``message`` and hangs up."""
        response = plivoxml.ResponseElement()
        response.add(plivoxml.SpeakElement(message))
        response.add(plivoxml.HangupElement())
        return _xml(response)

    def busy(self) -> Response:
        """``<Hangup reason="busy"/>`` as the first element: Plivo rejects the call unanswered."""
        response = plivoxml.ResponseElement()
        response.add(plivoxml.HangupElement(reason="busy"))
        return _xml(response)


def _xml(response: plivoxml.ResponseElement) -> Response:
    return Response(content=response.to_string(pretty=False), media_type=XML_MEDIA_TYPE)


def tenant_webhook(settings: GatewaySettings, account: ProviderAccount) -> PlivoWebhook:
    """The inbound webhook of one tenant: signatures checked with its Auth Token."""
    plivo = PlivoSettings(
        auth_id=account.get("account_id") or "",
        auth_token=SecretStr(account.secret("auth_token")),
    )
    return PlivoWebhook(settings, plivo)
