"""Vobiz outbound: its Call REST API over httpx, and the answer/status callbacks.

``POST {api}/api/v1/Account/{auth_id}/Call/`` (JSON, ``X-Auth-ID`` and
``X-Auth-Token`` headers) answers ``request_uuid``; ``DELETE .../Call/{uuid}/``
hangs up; ``POST .../Call/{uuid}/`` with ``aleg_url`` transfers (Vobiz runs the
XML there: the gateway's transfer route); ``POST .../Call/{uuid}/DTMF/`` sends
digits. Callbacks carry
Plivo's parameters (``CallStatus``, ``HangupCause``, ``Machine``) and Vobiz's
V3 signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx
from pydantic import SecretStr
from starlette.requests import Request

from voicebus.gateway.providers.base import InboundCall
from voicebus.gateway.providers.outbound import DialRequest, ProviderAccount, StatusUpdate
from voicebus.gateway.providers.plivo.outbound import status_update
from voicebus.gateway.providers.plivo.webhook import form_params, optional, phone
from voicebus.gateway.providers.vobiz.settings import VobizSettings
from voicebus.gateway.providers.vobiz.webhook import VobizWebhook
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.errors import ProviderError

NAME: Final = "vobiz"
REST_TIMEOUT_S: Final = 10.0


def default_account(settings: GatewaySettings, tenant_id: str) -> ProviderAccount:
    """The default tenant's Vobiz account from ``VB_GATEWAY_VOBIZ_*``."""
    env = VobizSettings().checked(settings.environment)
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


class VobizDialer:
    """Vobiz's Call API for one account.

    Args:
        account: ``account_id`` (Auth ID), ``auth_token``, optional ``api_base_url``
            and ``caller_id``.
    """

    def __init__(self, account: ProviderAccount) -> None:
        self._account = account
        auth_id = account.require("account_id")
        api_url = account.get("api_base_url") or VobizSettings.model_fields["api_url"].default
        self._client = httpx.AsyncClient(
            base_url=f"{str(api_url).rstrip('/')}/api/v1/Account/{auth_id}/",
            headers={"X-Auth-ID": auth_id, "X-Auth-Token": account.secret("auth_token")},
            timeout=REST_TIMEOUT_S,
            trust_env=False,
        )

    async def _request(self, what: str, method: str, path: str, body: Any = None) -> Any:
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.HTTPError as err:
            raise ProviderError(f"{what}: {err}", retryable=True, provider=NAME) from None
        if response.is_success:
            return response.json() if response.content else {}
        try:
            detail = response.json()
        except ValueError:
            detail = {}
        message = detail.get("error") if isinstance(detail, dict) else None
        raise ProviderError.from_status(
            response.status_code, provider=NAME, message=f"{what}: {message or response.text[:200]}"
        )

    async def dial(self, request: DialRequest) -> str:
        """Place the call; returns Vobiz's ``request_uuid``."""
        body: dict[str, Any] = {
            "from": (request.from_number or self._account.require("caller_id")).lstrip("+"),
            "to": request.to_number.lstrip("+"),
            "answer_url": request.answer_url,
            "answer_method": "POST",
            "ring_url": request.status_url,
            "hangup_url": request.status_url,
            "ring_timeout": request.ring_timeout_s,
        }
        if request.detect_machine:
            body |= {"machine_detection": "true", "machine_detection_url": request.amd_url}
        answer = await self._request("dial", "POST", "Call/", body)
        request_uuid = answer.get("request_uuid") if isinstance(answer, dict) else None
        if not isinstance(request_uuid, str) or not request_uuid:
            raise ProviderError(
                "dial: no request_uuid in the answer", retryable=False, provider=NAME
            )
        return request_uuid

    async def hangup(self, provider_call_id: str) -> None:
        """``DELETE /Call/{uuid}/``; a call that already ended is fine."""
        try:
            await self._request("hang up", "DELETE", f"Call/{provider_call_id}/")
        except ProviderError as err:
            if err.status != httpx.codes.NOT_FOUND:
                raise

    async def transfer(
        self,
        provider_call_id: str,
        to_number: str,
        *,
        announcement: str | None = None,
        markup_url: str | None = None,
    ) -> None:
        """``POST /Call/{uuid}/`` with ``legs=aleg``: Vobiz runs the XML at ``markup_url``.

        That XML dials ``to_number`` (it is signed into the URL); a warm transfer
        goes through cold (see :mod:`.transfer`).

        Raises:
            ProviderError: Vobiz refused, or no ``markup_url`` (not retryable).
        """
        if markup_url is None:
            raise ProviderError(
                "transfer needs the gateway's transfer URL",
                retryable=False,
                provider=NAME,
                code="transfer_unsupported",
            )
        body = {"legs": "aleg", "aleg_url": markup_url, "aleg_method": "POST"}
        await self._request("transfer", "POST", f"Call/{provider_call_id}/", body)

    async def send_dtmf(self, provider_call_id: str, digits: str) -> bool:
        """``POST /Call/{uuid}/DTMF/``."""
        await self._request(
            "send digits", "POST", f"Call/{provider_call_id}/DTMF/", {"digits": digits}
        )
        return True

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


class VobizCallbacks:
    """Answer and status callbacks of outbound Vobiz calls (signature V3, the tenant's token)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings

    async def verify(self, request: Request, account: ProviderAccount) -> Mapping[str, str] | None:
        """Query and form parameters when ``X-Vobiz-Signature-V3`` (or V2) matches ``account``."""
        hook = VobizWebhook(
            self._settings, VobizSettings(auth_token=SecretStr(account.secret("auth_token")))
        )
        if not hook.verify_headers(request):
            return None
        params = await form_params(request)
        if params is None:
            return None
        flat = {k: v if isinstance(v, str) else v[0] for k, v in params.items()}
        return {**request.query_params, **flat}

    def answered(self, params: Mapping[str, str]) -> InboundCall:
        """The answered call: Vobiz's ``CallUUID`` and the two numbers."""
        return InboundCall(
            provider_call_id=optional(params.get("CallUUID") or params.get("RequestUUID"), 128),
            from_number=phone(params.get("From")),
            to_number=phone(params.get("To")),
        )

    def status(self, params: Mapping[str, str]) -> StatusUpdate | None:
        """The normalized status of a ring, hang-up or machine-detection callback."""
        return status_update(params)
