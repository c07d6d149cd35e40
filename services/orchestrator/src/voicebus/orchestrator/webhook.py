"""A tenant's webhook tool on one call: a signed HTTP request, bounded in time and size.

Each request carries ``X-Voicebus-Signature: t=<unix seconds>,v1=<hex>`` where
``v1`` is the HMAC-SHA256, keyed with the tool's signing secret, of the ASCII
``"<t>."`` followed by the exact body bytes (empty for GET/DELETE), so the
business can check that the request is ours and fresh. ``X-Voicebus-Call-Id``
and ``X-Voicebus-Tenant`` say which call it serves. Arguments fill the URL
template (URL-encoded) and go in a JSON body (POST, PUT, PATCH) or the query
string (GET, DELETE). Failures become a short error the LLM reads and
``tool.result ok=false`` names: ``timeout``, ``http 503``, ``not JSON``,
``oversize``, ``refused target``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx
from opentelemetry import trace

from voicebus.contracts.agents import WebhookSettings
from voicebus.contracts.agents.tools import IDEMPOTENT_METHODS
from voicebus.engines.base import ToolSpec
from voicebus.orchestrator.ssrf import TargetPolicy, TargetRefusedError, check_target
from voicebus.orchestrator.templating import render, variables
from voicebus.orchestrator.tools import ToolError

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

SIGNATURE_HEADER: Final = "X-Voicebus-Signature"
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_BACKOFF_S: Final = 0.2


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Voicebus-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookCall:
    """One tenant webhook tool, bound to one call.

    Args:
        settings: the tool (no secrets).
        secrets: header values by header name, and the signing secret.
        signing_secret: HMAC key of the signature header.
        client: the shared HTTP client (no redirects followed).
        policy: which non-public targets are allowed.
        tenant_id: the call's tenant.
        call_id: the call.
    """

    ends_call = False

    def __init__(
        self,
        settings: WebhookSettings,
        secrets: Mapping[str, str],
        signing_secret: str,
        client: httpx.AsyncClient,
        policy: TargetPolicy,
        tenant_id: str,
        call_id: str,
    ) -> None:
        self.spec = ToolSpec(settings.name, settings.description, settings.parameters)
        self._settings = settings
        self._secrets = dict(secrets)
        self._signing = signing_secret
        self._client = client
        self._policy = policy
        self._ids = {"X-Voicebus-Tenant": tenant_id, "X-Voicebus-Call-Id": call_id}
        attempts = settings.retries + 1 if settings.method.value in IDEMPOTENT_METHODS else 1
        self.budget_s = attempts * (settings.timeout_s + _BACKOFF_S) + 1.0

    def reply(self, result: Any) -> str | None:
        """The tool's ``reply`` filled from an object result; None: the LLM speaks about it."""
        template = self._settings.reply
        if template is None or not isinstance(result, dict) or result.get("found") is False:
            return None
        return render(template, result, strict=False)

    def _request(self, arguments: Mapping[str, Any]) -> tuple[str, bytes, dict[str, str]]:
        used = variables(self._settings.url)
        encoded = {k: quote(str(v), safe="") for k, v in arguments.items() if k in used}
        url = render(self._settings.url, encoded, strict=False)
        rest = {k: v for k, v in arguments.items() if k not in used}
        method = self._settings.method.value
        body = b""
        if method in _BODY_METHODS:
            body = json.dumps(dict(arguments), separators=(",", ":"), default=str).encode()
        elif rest:
            query = "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}"
                             for k, v in rest.items())  # fmt: skip
            url += ("&" if "?" in url else "?") + query
        headers = {**self._settings.headers, **self._secrets, **self._ids}
        headers[SIGNATURE_HEADER] = sign(self._signing, int(time.time()), body)
        if body:
            headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/json"
        return url, body, headers

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """Call the webhook; its JSON answer is the result.

        Raises:
            ToolError: timeout, http status, not JSON, oversize, refused target.
        """
        url, body, headers = self._request(arguments)
        try:
            await check_target(url, self._policy)
        except TargetRefusedError as exc:
            raise ToolError(f"refused target: {exc}") from None
        method = self._settings.method.value
        attempts = self._settings.retries + 1 if method in IDEMPOTENT_METHODS else 1
        last = "no attempt"
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(_BACKOFF_S * attempt)
            try:
                status, data = await self._attempt(method, url, body, headers)
            except TimeoutError:
                last = f"timeout: no answer within {self._settings.timeout_s:g} s"
                continue
            except httpx.HTTPError as exc:
                last = f"unreachable: {type(exc).__name__}"
                continue
            if status >= 500:
                last = f"http {status}: the business's server failed"
                continue
            if status >= 400:
                raise ToolError(f"http {status}: the request was refused")
            return _json(data)
        raise ToolError(last)

    async def _attempt(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        # The host only: a webhook URL's path and query may carry the tenant's secrets.
        attributes = {"http.request.method": method, "server.address": urlsplit(url).hostname or ""}
        with tracer.start_as_current_span(
            "webhook", kind=trace.SpanKind.CLIENT, attributes=attributes
        ) as span:
            status, data = await self._send(method, url, body, headers)
            span.set_attribute("http.response.status_code", status)
        return status, data

    async def _send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        cap = self._settings.max_response_bytes
        async with asyncio.timeout(self._settings.timeout_s):
            request = self._client.build_request(method, url, content=body or None,
                                                 headers=dict(headers))  # fmt: skip
            response = await self._client.send(request, stream=True)
            try:
                if response.status_code >= 300 and response.status_code < 400:
                    raise ToolError(f"http {response.status_code}: redirects are not followed")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > cap:
                    raise ToolError(f"oversize: the answer is over {cap} bytes")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > cap:
                        raise ToolError(f"oversize: the answer is over {cap} bytes")
            finally:
                await response.aclose()
        return response.status_code, bytes(data)


def _json(data: bytes) -> Any:
    if not data.strip():
        return {"ok": True}
    try:
        return json.loads(data)
    except ValueError:
        raise ToolError("not JSON: the answer could not be read") from None
