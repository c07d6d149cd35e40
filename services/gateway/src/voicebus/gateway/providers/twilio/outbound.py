"""Twilio outbound calls: the Calls REST API (through the ``twilio`` SDK) and its callbacks.

Dialing creates a call whose ``Url`` is our answer route (TwiML
``<Connect><Stream>`` with signed parameters, as for inbound calls) and whose
status callbacks (initiated, ringing, answered, completed) and asynchronous AMD
results (``AsyncAmd``) come to our status route, signed with
``X-Twilio-Signature``. A live call is ended with ``Status=completed`` and
transferred by replacing its TwiML with ``<Dial>``, which also ends the media
stream.

A warm transfer replaces the call's TwiML with the gateway's transfer route:
``<Dial><Number url>``, where the target's leg fetches ``<Say>`` with the
announcement before the caller is bridged (a whisper). The agent does not talk
to the target itself: that would need the caller parked in a ``<Conference>``
while a second call gets its own media stream and agent session.

Keypad tones are not sent through the API: Twilio plays ``<Play digits>`` only
as new TwiML for the call, which would end the ``<Connect><Stream>`` the agent
talks on; the gateway plays the tones in-band instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import aiohttp
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.requests import Request
from starlette.responses import Response
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, VoiceResponse

from voicebus.contracts.events import AmdResult
from voicebus.gateway.providers.base import InboundCall
from voicebus.gateway.providers.outbound import (
    CallStatus,
    DialRequest,
    ProviderAccount,
    StatusUpdate,
)
from voicebus.gateway.providers.twilio.webhook import TWIML_MEDIA_TYPE, call_of, verified_form
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.errors import ProviderError

NAME: Final = "twilio"
REST_TIMEOUT_S: Final = 10.0
STATUS_EVENTS: Final = ["initiated", "ringing", "answered", "completed"]

STATUSES: Final = {
    "queued": CallStatus.INITIATED,
    "initiated": CallStatus.INITIATED,
    "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.ANSWERED,
    "answered": CallStatus.ANSWERED,
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
    "failed": CallStatus.FAILED,
    "canceled": CallStatus.CANCELED,
    "completed": CallStatus.COMPLETED,
}
"""Twilio ``CallStatus`` values (and ``CallbackSource`` event names) → normalized status."""

ANSWERED_BY: Final = {
    "human": (CallStatus.HUMAN, AmdResult.HUMAN),
    "machine_start": (CallStatus.MACHINE, AmdResult.MACHINE),
    "machine_end_beep": (CallStatus.MACHINE, AmdResult.MACHINE_END_BEEP),
    "machine_end_silence": (CallStatus.MACHINE, AmdResult.MACHINE),
    "machine_end_other": (CallStatus.MACHINE, AmdResult.MACHINE),
    "fax": (CallStatus.MACHINE, AmdResult.FAX),
    "unknown": (CallStatus.HUMAN, AmdResult.UNKNOWN),
}
"""Twilio AMD ``AnsweredBy`` → normalized status and AMD result."""


class TwilioAccountSettings(BaseSettings):
    """The default tenant's Twilio account (env prefix ``VB_GATEWAY_TWILIO_``).

    The Auth Token is ``VB_GATEWAY_TWILIO_AUTH_TOKEN``, read by the gateway settings.
    """

    model_config = SettingsConfigDict(env_prefix="VB_GATEWAY_TWILIO_", extra="ignore")

    account_sid: str = Field(default="", description="Account SID (AC...), used to dial.")
    caller_id: str = Field(default="", description="Number presented when dialing, E.164.")
    api_base_url: str = Field(
        default="", description="REST API base URL; empty: Twilio's (https://api.twilio.com)."
    )


def default_account(settings: GatewaySettings, tenant_id: str) -> ProviderAccount:
    """The default tenant's account from the environment."""
    env = TwilioAccountSettings()
    fields = {"account_id": env.account_sid, "caller_id": env.caller_id}
    if env.api_base_url:
        fields["api_base_url"] = env.api_base_url
    return ProviderAccount(
        provider=NAME,
        tenant_id=tenant_id,
        secrets={"auth_token": settings.twilio_auth_token},
        fields=fields,
    )


def _failure(err: Exception, what: str) -> ProviderError:
    if isinstance(err, TwilioRestException):
        code = str(err.code) if err.code is not None else None
        # Twilio's message may quote the number dialed: only the code and status go on.
        message = f"{what}: error {code}" if code else what
        return ProviderError.from_status(err.status, provider=NAME, message=message, code=code)
    retryable = not isinstance(err, ValueError)  # an unreadable answer is not a network blip
    message = f"{NAME}: {what}: {type(err).__name__}"
    return ProviderError(message, retryable=retryable, provider=NAME)


class TwilioDialer:
    """Twilio's Calls API for one account, through the SDK's asyncio client.

    Raises:
        ConfigurationError: the account has no Account SID or Auth Token.
    """

    def __init__(self, account: ProviderAccount) -> None:
        self._http = AsyncTwilioHttpClient(timeout=REST_TIMEOUT_S)
        self._client = Client(
            account.require("account_id"), account.secret("auth_token"), http_client=self._http
        )
        base_url = account.get("api_base_url")
        if base_url:  # the SDK joins each domain's base URL with the resource path
            self._client.api.base_url = base_url.rstrip("/")
        self._caller_id = account.get("caller_id")

    async def dial(self, request: DialRequest) -> str:
        """Create the call; its TwiML comes from ``request.answer_url``."""
        options: dict[str, Any] = {
            "to": request.to_number,
            "from_": request.from_number or self._caller_id,
            "url": request.answer_url,
            "method": "POST",
            "status_callback": request.status_url,
            "status_callback_method": "POST",
            "status_callback_event": STATUS_EVENTS,
            "timeout": request.ring_timeout_s,
        }
        if request.detect_machine:
            options |= {
                "machine_detection": "DetectMessageEnd",
                "async_amd": "true",
                "async_amd_status_callback": request.amd_url or request.status_url,
                "async_amd_status_callback_method": "POST",
            }
        try:
            call = await self._client.calls.create_async(**options)
        except (TwilioException, aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise _failure(err, "create call") from None
        return str(call.sid)

    async def hangup(self, provider_call_id: str) -> None:
        """``Status=completed``: Twilio hangs the call up."""
        await self._update(provider_call_id, "hang up", status="completed")

    async def transfer(
        self,
        provider_call_id: str,
        to_number: str,
        *,
        announcement: str | None = None,
        markup_url: str | None = None,
    ) -> None:
        """New TwiML for the call: ``<Dial>`` the target (the stream ends).

        Warm (an announcement and the gateway's ``markup_url``): the call's new
        TwiML is fetched from ``markup_url``, whose ``<Number url>`` whispers the
        announcement to the target before the caller is bridged.
        """
        if announcement and markup_url:
            await self._update(provider_call_id, "transfer", url=markup_url, method="POST")
            return
        response = VoiceResponse()
        dial = Dial(caller_id=self._caller_id) if self._caller_id else Dial()
        dial.number(to_number)
        response.append(dial)
        await self._update(provider_call_id, "transfer", twiml=str(response))

    async def send_dtmf(self, provider_call_id: str, digits: str) -> bool:
        """Not through the API (see the module docstring): False."""
        return False

    async def aclose(self) -> None:
        """Close the SDK's HTTP session."""
        if self._http.session is not None:
            await self._http.session.close()

    async def _update(self, provider_call_id: str, what: str, **changes: str) -> None:
        try:
            await self._client.calls(provider_call_id).update_async(**changes)
        except (TwilioException, aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise _failure(err, what) from None


def status_of(params: Mapping[str, str]) -> StatusUpdate | None:
    """A status or AMD callback's form → the normalized status (None: unknown status)."""
    call_sid = params.get("CallSid") or None
    answered_by = params.get("AnsweredBy")
    if answered_by:
        status, amd = ANSWERED_BY.get(answered_by, (CallStatus.HUMAN, AmdResult.UNKNOWN))
        duration = params.get("MachineDetectionDuration", "")
        detection_ms = int(duration) if duration.isdigit() else None
        return StatusUpdate(status, call_sid, amd=amd, detection_ms=detection_ms)
    progress = STATUSES.get(params.get("CallStatus", ""))
    if progress is None:
        return None
    code = params.get("ErrorCode") or params.get("SipResponseCode") or None
    return StatusUpdate(progress, call_sid, error_code=code)


class TwilioTransferMarkup:
    """TwiML of a warm transfer: ``<Dial><Number url>``, and the ``<Say>`` the target hears."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings

    def dial(self, to_number: str, caller_id: str | None, whisper_url: str | None) -> Response:
        """``<Dial>`` the target; its leg fetches ``whisper_url`` before it is bridged."""
        dial = Dial(caller_id=caller_id) if caller_id else Dial()
        dial.number(to_number, url=whisper_url, method="POST")
        response = VoiceResponse()
        response.append(dial)
        return Response(content=str(response), media_type=TWIML_MEDIA_TYPE)

    def whisper(self, announcement: str) -> Response:
        """``<Say>`` the announcement to the target (then Twilio bridges the call)."""
        response = VoiceResponse()
        response.say(announcement)
        return Response(content=str(response), media_type=TWIML_MEDIA_TYPE)


class TwilioCallbacks:
    """Verifies (``X-Twilio-Signature``, the tenant's Auth Token) and reads callbacks."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings

    async def verify(self, request: Request, account: ProviderAccount) -> Mapping[str, str] | None:
        """The callback's form when its signature matches the account's Auth Token."""
        url = self._settings.public_http_url(request.url.path)
        query = request.url.query
        signed_url = f"{url}?{query}" if query else url
        return await verified_form(
            request, signed_url, RequestValidator(account.secret("auth_token"))
        )

    def answered(self, params: Mapping[str, str]) -> InboundCall:
        """The answered call (``From`` is our caller id, ``To`` the callee)."""
        return call_of(params)

    def status(self, params: Mapping[str, str]) -> StatusUpdate | None:
        """See :func:`status_of`."""
        return status_of(params)
