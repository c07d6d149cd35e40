"""Twilio's inbound voice webhook: ``X-Twilio-Signature`` check and TwiML answers.

Twilio signs the full URL it requested (scheme, host, path and query) followed
by every POST parameter, name then value, sorted by name, with HMAC-SHA1 keyed
by the account's Auth Token. Behind a proxy or tunnel the URL this process
sees is not the one Twilio requested, so the configured public URL is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

from voicebus.gateway.providers.base import InboundCall
from voicebus.gateway.providers.outbound import ProviderAccount
from voicebus.gateway.settings import GatewaySettings

TWIML_MEDIA_TYPE: Final = "application/xml"
MAX_FORM_FIELDS: Final = 200
"""Twilio's voice webhook sends a few dozen parameters; more is not Twilio."""


def _optional(value: object, max_chars: int = 64) -> str | None:
    """A form value, or None when absent, empty or too long for the call events."""
    if isinstance(value, str) and 0 < len(value) <= max_chars:
        return value
    return None


class TwilioWebhook:
    """Checks and answers ``POST /telephony/twilio/inbound/{agent}``.

    Args:
        settings: supplies the Auth Token and the public URL signatures are checked against.
        auth_token: a tenant's Auth Token instead of the settings' one.
    """

    def __init__(self, settings: GatewaySettings, auth_token: str | None = None) -> None:
        token = auth_token or settings.twilio_auth_token.get_secret_value()
        self._validator = RequestValidator(token)
        self._settings = settings

    def signed_url(self, request: Request) -> str:
        """The URL Twilio signed: the public base URL, this path, and the query string."""
        url = self._settings.public_http_url(request.url.path)
        query = request.url.query
        return f"{url}?{query}" if query else url

    async def accept(self, request: Request) -> InboundCall | None:
        """The call a webhook describes, or None when ``X-Twilio-Signature`` does not match."""
        form = await verified_form(request, self.signed_url(request), self._validator)
        return None if form is None else call_of(form)

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> Response:
        """TwiML ``<Connect><Stream url=...>`` with one ``<Parameter>`` per entry."""
        stream = Stream(url=stream_url)
        for name, value in parameters.items():
            stream.parameter(name=name, value=value)
        connect = Connect()
        connect.append(stream)
        response = VoiceResponse()
        response.append(connect)
        return _twiml(response)

    def decline(self, message: str) -> Response:
        """TwiML that says ``message`` and hangs up."""
        response = VoiceResponse()
        response.say(message)
        response.hangup()
        return _twiml(response)

    def busy(self) -> Response:
        """``<Reject reason="busy"/>``: Twilio refuses the call unanswered, unbilled."""
        response = VoiceResponse()
        response.reject(reason="busy")
        return _twiml(response)


def call_of(form: Mapping[str, str]) -> InboundCall:
    """The call a (verified) voice webhook's form describes."""
    return InboundCall(
        provider_call_id=_optional(form.get("CallSid"), 128),
        from_number=_optional(form.get("From")),
        to_number=_optional(form.get("To")),
    )


async def verified_form(
    request: Request, signed_url: str, validator: RequestValidator
) -> dict[str, str] | None:
    """The form of a request whose ``X-Twilio-Signature`` matches ``signed_url``, else None.

    A repeated field keeps its last value in the result; the signature covers all.
    """
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        return None
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    params: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            return None  # a file upload: not a Twilio webhook
        params.setdefault(name, []).append(value)
    if not validator.validate(signed_url, _MultiParams(params), signature, algorithm):
        return None
    return {name: values[-1] for name, values in params.items()}


class _MultiParams(dict[str, list[str]]):
    """Form parameters with every value of a repeated name, as ``RequestValidator`` reads them."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def _twiml(response: VoiceResponse) -> Response:
    return Response(content=str(response), media_type=TWIML_MEDIA_TYPE)


def tenant_webhook(settings: GatewaySettings, account: ProviderAccount) -> TwilioWebhook:
    """The inbound webhook of one tenant: signatures checked with its Auth Token."""
    return TwilioWebhook(settings, account.secret("auth_token"))
