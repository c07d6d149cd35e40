"""Plivo outbound: the REST API through the plivo SDK, and the answer/status callbacks.

The SDK is synchronous (``requests``): each call runs in a worker thread. Its
base URL is the account's ``api_base_url`` (tests point it at the devkit's
stand-in carrier). Plivo posts ``ring_url`` (``CallStatus=ringing``),
``hangup_url`` (``completed``, ``busy``, ``no-answer``, ``timeout``,
``failed``, ``cancel`` with a ``HangupCause``) and ``machine_detection_url``
(``Machine=true|false``); every one is signed like the answer webhook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import plivo
from plivo import exceptions as plivo_errors
from pydantic import SecretStr
from starlette.requests import Request

from voicebus.contracts.events import AmdResult
from voicebus.gateway.providers.base import InboundCall
from voicebus.gateway.providers.outbound import (
    CallStatus,
    DialRequest,
    ProviderAccount,
    StatusUpdate,
)
from voicebus.gateway.providers.plivo.settings import PlivoSettings
from voicebus.gateway.providers.plivo.webhook import PlivoWebhook, optional, phone
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.errors import ProviderError

NAME: Final = "plivo"
REST_TIMEOUT_S: Final = 10.0
T = TypeVar("T")

STATUSES: Final = {
    "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.ANSWERED,
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
    "timeout": CallStatus.NO_ANSWER,
    "failed": CallStatus.FAILED,
    "cancel": CallStatus.CANCELED,
    "canceled": CallStatus.CANCELED,
}
"""Plivo's (and Vobiz's) ``CallStatus`` values, normalized."""

EVENTS: Final = {"Ring": CallStatus.RINGING, "StartApp": CallStatus.ANSWERED}
"""``Event`` of a callback that carries no ``CallStatus`` (Vobiz names its callbacks so)."""


def default_account(settings: GatewaySettings, tenant_id: str) -> ProviderAccount:
    """The default tenant's Plivo account from ``VB_GATEWAY_PLIVO_*``."""
    env = PlivoSettings().checked(settings.environment)
    return ProviderAccount(
        provider=NAME,
        tenant_id=tenant_id,
        secrets={"auth_token": env.auth_token},
        fields={
            "account_id": env.auth_id,
            "api_base_url": env.api_url,
            **({"caller_id": env.caller_id} if env.caller_id else {}),
        },
    )


def status_update(params: Mapping[str, str]) -> StatusUpdate | None:
    """The status a Plivo-style callback reports; None for one that needs no action."""
    call_uuid = optional(params.get("CallUUID") or params.get("RequestUUID"), 128)
    machine = params.get("Machine")
    if machine in ("true", "false"):
        found = machine == "true"
        return StatusUpdate(
            CallStatus.MACHINE if found else CallStatus.HUMAN,
            call_uuid,
            amd=AmdResult.MACHINE if found else AmdResult.HUMAN,
        )
    status = STATUSES.get(params.get("CallStatus", "").lower()) or EVENTS.get(
        params.get("Event", "")
    )
    if status is None:
        return None
    cause = params.get("HangupCauseCode") or params.get("HangupCause")
    return StatusUpdate(status, call_uuid, error_code=optional(cause))


class _RestClient(plivo.RestClient):  # type: ignore[misc]  # the SDK is untyped
    """The plivo SDK's client on a configurable base URL (a stand-in carrier in tests)."""

    def __init__(self, auth_id: str, auth_token: str, api_url: str) -> None:
        super().__init__(auth_id, auth_token, timeout=REST_TIMEOUT_S)
        self._root = f"{api_url.rstrip('/')}/v1/Account"

    def create_request(self, method: str, path: Any = None, data: Any = None, **kwargs: Any) -> Any:
        self.base_uri = self._root  # the SDK resets it to Plivo's hosts before each request
        return super().create_request(method, path, data, **kwargs)


class PlivoDialer:
    """Plivo's Call API for one account.

    Args:
        account: ``account_id`` (Auth ID), ``auth_token``, optional ``api_base_url``
            and ``caller_id``.
    """

    def __init__(self, account: ProviderAccount) -> None:
        self._account = account
        api_url = account.get("api_base_url", PlivoSettings.model_fields["api_url"].default)
        assert api_url is not None
        try:
            self._client = _RestClient(
                account.require("account_id"), account.secret("auth_token"), api_url
            )
        except plivo_errors.AuthenticationError as err:
            raise ProviderError(str(err), retryable=False, provider=NAME) from None

    async def _call(self, what: str, job: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(job)
        except plivo_errors.ResourceNotFoundError as err:
            raise ProviderError(
                f"{what}: {err}", retryable=False, status=404, provider=NAME
            ) from None
        except (plivo_errors.ValidationError, plivo_errors.InvalidRequestError) as err:
            raise ProviderError(
                f"{what}: {err}", retryable=False, status=400, provider=NAME
            ) from None
        except (plivo_errors.AuthenticationError, plivo_errors.ForbiddenError) as err:
            raise ProviderError(
                f"{what}: {err}", retryable=False, status=401, provider=NAME
            ) from None
        except (plivo_errors.PlivoRestError, OSError) as err:  # server errors, transport
            raise ProviderError(f"{what}: {err}", retryable=True, provider=NAME) from None

    async def dial(self, request: DialRequest) -> str:
        """``POST /Call/``; returns Plivo's request UUID (the call's id in callbacks)."""
        caller_id = request.from_number or self._account.require("caller_id")
        amd: dict[str, Any] = {}
        if request.detect_machine:
            amd = {"machine_detection": "true", "machine_detection_url": request.amd_url}
        response = await self._call(
            "dial",
            lambda: self._client.calls.create(
                from_=caller_id.lstrip("+"),
                to_=request.to_number.lstrip("+"),
                answer_url=request.answer_url,
                answer_method="POST",
                ring_url=request.status_url,
                hangup_url=request.status_url,
                ring_timeout=request.ring_timeout_s,
                **amd,
            ),
        )
        request_uuid = getattr(response, "request_uuid", None)
        if isinstance(request_uuid, list):
            request_uuid = request_uuid[0] if request_uuid else None
        if not isinstance(request_uuid, str) or not request_uuid:
            raise ProviderError(
                "dial: no request_uuid in the answer", retryable=False, provider=NAME
            )
        return request_uuid

    async def hangup(self, provider_call_id: str) -> None:
        """``DELETE /Call/{uuid}/``; a call that already ended is fine."""
        try:
            await self._call("hang up", lambda: self._client.calls.delete(provider_call_id))
        except ProviderError as err:
            if err.status != 404:
                raise

    async def transfer(
        self,
        provider_call_id: str,
        to_number: str,
        *,
        announcement: str | None = None,
        markup_url: str | None = None,
    ) -> None:
        """``POST /Call/{uuid}/`` with ``legs=aleg``: Plivo runs the XML at ``markup_url``.

        That XML dials ``to_number`` (it is signed into the URL); a warm transfer
        goes through cold (see :mod:`.transfer`).

        Raises:
            ProviderError: Plivo refused, or no ``markup_url`` (not retryable).
        """
        if markup_url is None:
            raise ProviderError(
                "transfer needs the gateway's transfer URL",
                retryable=False,
                provider=NAME,
                code="transfer_unsupported",
            )
        await self._call(
            "transfer",
            lambda: self._client.calls.update(
                provider_call_id, legs="aleg", aleg_url=markup_url, aleg_method="POST"
            ),
        )

    async def send_dtmf(self, provider_call_id: str, digits: str) -> bool:
        """``POST /Call/{uuid}/DTMF/`` on the callee's leg."""
        await self._call(
            "send digits",
            lambda: self._client.calls.send_digits(provider_call_id, digits, leg="aleg"),
        )
        return True

    async def aclose(self) -> None:
        """Close the SDK's HTTP sessions."""
        self._client.session.close()
        self._client.multipart_session.close()


class PlivoCallbacks:
    """Answer and status callbacks of outbound Plivo calls (signature V3, the tenant's token)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings

    async def verify(self, request: Request, account: ProviderAccount) -> Mapping[str, str] | None:
        """Query and form parameters when ``X-Plivo-Signature-V3`` matches ``account``."""
        token = account.secret("auth_token")
        hook = PlivoWebhook(self._settings, PlivoSettings(auth_token=SecretStr(token)))
        params = await hook.verify(request)
        if params is None:
            return None
        flat = {k: v if isinstance(v, str) else v[0] for k, v in params.items()}
        return {**request.query_params, **flat}

    def answered(self, params: Mapping[str, str]) -> InboundCall:
        """The answered call: Plivo's ``CallUUID`` and the two numbers."""
        return InboundCall(
            provider_call_id=optional(params.get("CallUUID") or params.get("RequestUUID"), 128),
            from_number=phone(params.get("From")),
            to_number=phone(params.get("To")),
        )

    def status(self, params: Mapping[str, str]) -> StatusUpdate | None:
        """The normalized status of a ring, hang-up or machine-detection callback."""
        return status_update(params)
