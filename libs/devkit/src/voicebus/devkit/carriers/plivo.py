"""A stand-in for Plivo's Call API and its callees (see :mod:`.base`).

Routes and JSON follow Plivo's public API reference, so the plivo SDK's
``RestClient`` (pointed at :attr:`base_url`) works against it:

- ``POST /v1/Account/{auth_id}/Call/`` (HTTP Basic auth, JSON body with ``from``,
  ``to``, ``answer_url``, ``ring_url``, ``hangup_url``, ``machine_detection``...)
  → 201 ``{"api_id", "message": "call fired", "request_uuid"}``;
- ``DELETE /v1/Account/{auth_id}/Call/{uuid}/`` → 204 (hang up);
- ``POST /v1/Account/{auth_id}/Call/{uuid}/DTMF/`` → 202 (send digits);
- ``POST /v1/Account/{auth_id}/Call/{uuid}/`` with ``legs=aleg`` and ``aleg_url``
  → 202 (transfer: the XML at ``aleg_url`` is fetched, signed, and its
  ``<Dial><Number>`` recorded; the stream ends and the call completes).

Callbacks are form posts signed with ``X-Plivo-Signature-V3``: ``ring_url``
(``CallStatus=ringing``), the ``answer_url`` (its XML names the stream),
``hangup_url`` (``completed``/``busy``/``no-answer``/``failed`` with a
``HangupCause``) and ``machine_detection_url`` (``Machine=true|false``).
Unlike Plivo, the stand-in uses the request UUID as the call's ``CallUUID``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from voicebus.devkit.caller import plivo as wire
from voicebus.devkit.caller.errors import CallerError
from voicebus.devkit.caller.protocol import CallerProtocol, ProtocolError, StreamIds
from voicebus.devkit.carriers.base import (
    Behaviour,
    DialedCall,
    Progress,
    StandInCarrier,
    behaviour_for,
    parse_dial,
)
from voicebus.engines.base import TTSEngine

DEV_AUTH_ID: Final = "MADEVELOPMENT0000000"
DEV_AUTH_TOKEN: Final = "dev-secret"  # noqa: S105 - the gateway's development placeholder

HANGUPS: Final = {
    Progress.BUSY: ("busy", "USER_BUSY", "3010"),
    Progress.NO_ANSWER: ("no-answer", "NO_ANSWER", "3020"),
    Progress.FAILED: ("failed", "CALL_REJECTED", "3030"),
    Progress.COMPLETED: ("completed", "NORMAL_CLEARING", "4000"),
}
"""Final progress → ``CallStatus``, ``HangupCause`` and ``HangupCauseCode``."""


class PlivoCarrier(StandInCarrier):
    """Plivo's Call API and callees on loopback.

    Args:
        auth_id: the account's Auth ID (the path segment and Basic-auth user).
        auth_token: the Auth Token (Basic-auth password and callback signing key).
        **kwargs: see :class:`~.base.StandInCarrier`.
    """

    name: ClassVar[str] = "plivo"
    api_prefix: ClassVar[str] = "/v1/Account"

    def __init__(
        self,
        *,
        gateway_url: str,
        auth_id: str = DEV_AUTH_ID,
        auth_token: str = DEV_AUTH_TOKEN,
        public_url: str | None = None,
        ring_s: float = 0.1,
        voice: TTSEngine | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            gateway_url=gateway_url, public_url=public_url, ring_s=ring_s, voice=voice, **kwargs
        )
        self.auth_id = auth_id
        self.auth_token = auth_token
        self._formats: dict[str, str | None] = {}
        self._extra_headers: dict[str, str | None] = {}

    # -- REST API ---------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Create, hang up, send digits to and transfer calls."""
        base = f"{self.api_prefix}/{{auth_id}}/Call"
        return [
            Route(f"{base}/", self._create, methods=["POST"]),
            Route(f"{base}/{{uuid}}/", self._hangup, methods=["DELETE"]),
            Route(f"{base}/{{uuid}}/DTMF/", self._dtmf, methods=["POST"]),
            Route(f"{base}/{{uuid}}/", self._update, methods=["POST"]),
        ]

    def authorized(self, request: Request) -> bool:
        """HTTP Basic auth with the Auth ID and Auth Token, on the account's path."""
        expected = base64.b64encode(f"{self.auth_id}:{self.auth_token}".encode()).decode()
        header = request.headers.get("authorization", "")
        return request.path_params.get("auth_id") == self.auth_id and header == f"Basic {expected}"

    def error(self, status: int, message: str) -> Response:
        """Plivo's error body."""
        return JSONResponse({"api_id": str(uuid.uuid4()), "error": message}, status_code=status)

    async def _body(self, request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.body() or b"{}")
        except (ValueError, binascii.Error):
            return None
        return body if isinstance(body, dict) else None

    async def _create(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.error(401, "authentication failed")
        body = await self._body(request)
        if body is None:
            return self.error(400, "body is not a JSON object")
        missing = [name for name in ("from", "to", "answer_url") if not body.get(name)]
        if missing:
            return self.error(400, f"missing parameters: {', '.join(missing)}")
        to_number, from_number = str(body["to"]), str(body["from"])
        if behaviour_for(to_number) is Behaviour.REJECT:
            return self.error(400, "invalid destination number")
        sid = str(uuid.uuid4())
        params = {key: str(value) for key, value in body.items() if value is not None}
        self.place(sid, to_number, from_number, params)
        answer = {"api_id": str(uuid.uuid4()), "message": "call fired", "request_uuid": sid}
        return JSONResponse(answer, status_code=201)

    async def _hangup(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.error(401, "authentication failed")
        call = self.calls.get(request.path_params["uuid"])
        if call is None or call.ended.is_set():
            return self.error(404, "call not found")
        call.updates.append({"hangup": "true"})
        await self.end_media(call)
        return Response(status_code=204)

    async def _dtmf(self, request: Request) -> Response:
        return await self._modify(request, "digits sent")

    async def _update(self, request: Request) -> Response:
        """Transfer: fetch ``aleg_url`` (signed), record the ``<Dial>`` target, end the stream."""
        if not self.authorized(request):
            return self.error(401, "authentication failed")
        call = self.calls.get(request.path_params["uuid"])
        body = await self._body(request)
        if call is None or call.ended.is_set():
            return self.error(404, "call not found")
        url = body.get("aleg_url") if body is not None else None
        if body is None or body.get("legs", "aleg") != "aleg" or not isinstance(url, str):
            return self.error(400, "legs=aleg with an aleg_url is required")
        call.updates.append({key: str(value) for key, value in body.items()})
        form = self.form(call, CallStatus="in-progress", Event="Transfer")
        response = await self.post(call, "transfer", url, form=form, headers=self.sign(url, form))
        dial = parse_dial(response.text) if response.status_code == 200 else None
        if dial is None:
            return self.error(400, f"aleg_url answered HTTP {response.status_code} without <Dial>")
        call.transferred_to = dial[0]
        await self.end_media(call)
        return JSONResponse({"api_id": str(uuid.uuid4()), "message": "call transferred"}, 202)

    async def _modify(self, request: Request, message: str) -> Response:
        if not self.authorized(request):
            return self.error(401, "authentication failed")
        call = self.calls.get(request.path_params["uuid"])
        body = await self._body(request)
        if call is None or call.ended.is_set():
            return self.error(404, "call not found")
        if body is None:
            return self.error(400, "body is not a JSON object")
        call.updates.append({key: str(value) for key, value in body.items()})
        return JSONResponse({"api_id": str(uuid.uuid4()), "message": message}, status_code=202)

    # -- callbacks ------------------------------------------------------------------

    def form(self, call: DialedCall, **extra: str) -> dict[str, str]:
        """The parameters every callback of ``call`` carries."""
        return {
            "CallUUID": call.sid,
            "RequestUUID": call.sid,
            "Direction": "outbound",
            "From": call.from_number,
            "To": call.to_number,
            **extra,
        }

    def sign(self, url: str, form: Mapping[str, str]) -> dict[str, str]:
        """Plivo's V3 signature headers, computed by the plivo SDK."""
        nonce = wire.new_nonce()
        return {
            wire.SIGNATURE_HEADER: wire.sign(self.auth_token, url, form, nonce),
            wire.NONCE_HEADER: nonce,
        }

    async def callback(
        self, call: DialedCall, what: str, url: str | None, form: dict[str, str]
    ) -> None:
        """Post a signed callback to ``url`` (when the dial request gave one)."""
        if url:
            await self.post(call, what, url, form=form, headers=self.sign(url, form))

    async def notify(self, call: DialedCall, progress: Progress) -> None:
        """Ring callback on ringing, hang-up callback with the cause when it is over."""
        if progress is Progress.RINGING:
            form = self.form(call, CallStatus="ringing", Event="Ring")
            await self.callback(call, progress.value, call.params.get("ring_url"), form)
        elif progress in HANGUPS:
            status, cause, code = HANGUPS[progress]
            form = self.form(
                call, CallStatus=status, Event="Hangup", HangupCause=cause, HangupCauseCode=code
            )
            await self.callback(call, progress.value, call.params.get("hangup_url"), form)

    async def media_target(self, call: DialedCall) -> tuple[str, dict[str, str]]:
        """Fetch the answer URL; its XML's ``<Stream>`` (parameters in the URL's query)."""
        url = call.params["answer_url"]
        form = self.form(call, CallStatus="in-progress", Event="StartApp")
        response = await self.post(call, "answer", url, form=form, headers=self.sign(url, form))
        response.raise_for_status()
        try:
            target, says = wire.parse_answer(response.text)
        except ProtocolError as err:
            raise _no_stream(str(err)) from None
        if target is None:
            raise _no_stream(f"the answer has no <Stream> (it said {' '.join(says)!r})")
        self._formats[call.sid] = target.content_type
        self._extra_headers[call.sid] = target.extra_headers
        return target.url, target.parameters

    def protocol(self, call: DialedCall) -> CallerProtocol:
        """Plivo Audio Streaming in the format the answer asked for."""
        ids = StreamIds(self.auth_id, call.sid, wire.new_uuid())
        return wire.PlivoProtocol(
            self._formats.get(call.sid), ids, self._extra_headers.get(call.sid)
        )

    def wants_amd(self, call: DialedCall) -> bool:
        """Whether the dial request asked for machine detection."""
        return call.params.get("machine_detection") in ("true", "hangup")

    async def detect(self, call: DialedCall, machine: bool) -> None:
        """Post ``Machine=true|false`` to the machine detection URL."""
        form = self.form(call, Machine="true" if machine else "false", CallStatus="in-progress")
        url = call.params.get("machine_detection_url")
        await self.callback(call, "machine" if machine else "human", url, form)


def _no_stream(why: str) -> CallerError:
    return CallerError(f"the answer URL did not connect a stream: {why}")
