"""A stand-in for Twilio's Calls API (2010-04-01) and its callees.

Routes, form fields and JSON follow Twilio's public documentation ("Call
resource", "Call status callbacks", "Answering Machine Detection"), so the
``twilio`` SDK's client works against it:

- ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` creates a call
  (Basic auth: Account SID and Auth Token); an invalid number gets 400 with
  Twilio's error 21211.
- ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json`` modifies it:
  ``Status=completed`` hangs up, ``Twiml`` (or ``Url``, fetched signed)
  replaces its instructions (the media stream ends; a ``<Dial>`` is recorded as
  a transfer, and its ``<Number url>`` whisper is fetched and recorded).

Callbacks are signed with ``X-Twilio-Signature``: status callbacks for the
events asked for in ``StatusCallbackEvent`` (busy, no-answer and failed come as
the ``completed`` event), the answer request to ``Url`` (TwiML
``<Connect><Stream>``), and the ``AsyncAmdStatusCallback``.
"""

from __future__ import annotations

import base64
import secrets
from typing import ClassVar, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from voicebus.devkit.caller import twilio
from voicebus.devkit.caller.errors import CallRejectedError
from voicebus.devkit.caller.protocol import CallerProtocol, StreamIds
from voicebus.devkit.carriers.base import (
    Behaviour,
    DialedCall,
    Progress,
    StandInCarrier,
    parse_dial,
)

API: Final = "/2010-04-01/Accounts/{account_sid}/Calls"
INVALID_NUMBER: Final = 21211

_WORDS: Final = {
    Progress.INITIATED: ("initiated", "initiated"),
    Progress.RINGING: ("ringing", "ringing"),
    Progress.ANSWERED: ("answered", "in-progress"),
    Progress.BUSY: ("completed", "busy"),
    Progress.NO_ANSWER: ("completed", "no-answer"),
    Progress.FAILED: ("completed", "failed"),
    Progress.COMPLETED: ("completed", "completed"),
}
"""Progress → (StatusCallbackEvent it belongs to, CallStatus Twilio reports)."""


class TwilioCarrier(StandInCarrier):
    """Twilio's Calls API on loopback (see the module docstring).

    Args:
        account_sid: the account the API accepts.
        auth_token: its Auth Token: checks Basic auth, signs callbacks.
        **kwargs: see :class:`~.base.StandInCarrier`.
    """

    name: ClassVar[str] = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.account_sid = account_sid
        self.auth_token = auth_token

    def routes(self) -> list[BaseRoute]:
        """Create and update calls."""
        return [
            Route(f"{API}.json", self._create, methods=["POST"]),
            Route(f"{API}/{{sid}}.json", self._update, methods=["POST"]),
        ]

    # -- REST API ---------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    async def _form(self, request: Request) -> dict[str, list[str]]:
        form = await request.form()
        fields: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            fields.setdefault(name, []).append(str(value))
        return fields

    async def _create(self, request: Request) -> Response:
        if not self._authorized(request) or request.path_params["account_sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        fields = await self._form(request)
        to, from_ = _one(fields, "To"), _one(fields, "From")
        if not to or not from_ or not _one(fields, "Url"):
            return _error(400, 21201, "No 'To', 'From' or 'Url' specified")
        if to.endswith("0006"):
            return _error(400, INVALID_NUMBER, f"The 'To' number {to} is not a valid phone number.")
        sid = twilio.new_sid("CA")
        params = {name: values[-1] for name, values in fields.items()}
        params["StatusCallbackEvent"] = " ".join(fields.get("StatusCallbackEvent", []))
        self.place(sid, to, from_, params)
        return JSONResponse(self._resource(sid, to, from_, "queued"), status_code=201)

    async def _update(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        call = self.calls.get(request.path_params["sid"])
        if call is None:
            return _error(404, 20404, "The requested resource was not found")
        fields = await self._form(request)
        update = {name: values[-1] for name, values in fields.items()}
        call.updates.append(update)
        if "Url" in update:
            url, form = update["Url"], self._common(call, "in-progress")
            signature = {twilio.SIGNATURE_HEADER: twilio.sign(self.auth_token, url, form)}
            response = await self.post(call, "transfer", url, form=form, headers=signature)
            await self._dial(call, response.text if response.status_code == 200 else "")
        elif "Twiml" in update:
            await self._dial(call, update["Twiml"])
        if update.get("Status") in ("completed", "canceled") or {"Twiml", "Url"} & update.keys():
            await self.end_media(call)
        return JSONResponse(self._resource(call.sid, call.to_number, call.from_number, "completed"))

    async def _dial(self, call: DialedCall, markup: str) -> None:
        """Record a ``<Dial><Number>`` target; fetch its whisper (``<Number url>``) like Twilio."""
        dial = parse_dial(markup)
        if dial is None:
            return
        call.transferred_to, whisper = dial
        if whisper:
            form = self._common(call, "in-progress") | {"To": dial[0]}
            response = await self.post(
                call, "whisper", whisper, form=form,
                headers={twilio.SIGNATURE_HEADER: twilio.sign(self.auth_token, whisper, form)},
            )  # fmt: skip
            if response.status_code == 200:
                call.whispered.extend(twilio.parse_twiml(response.text).says)

    def _resource(self, sid: str, to: str, from_: str, status: str) -> dict[str, object]:
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": from_,
            "status": status,
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"{API.format(account_sid=self.account_sid)}/{sid}.json",
        }

    # -- callbacks ------------------------------------------------------------------

    def _common(self, call: DialedCall, status: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": twilio.API_VERSION,
            "CallSid": call.sid,
            "CallStatus": status,
            "Direction": "outbound-api",
            "From": call.from_number,
            "To": call.to_number,
        }

    async def _signed_post(
        self, call: DialedCall, what: str, url: str, form: dict[str, str]
    ) -> int:
        signature = twilio.sign(self.auth_token, url, form)
        response = await self.post(
            call, what, url, form=form, headers={twilio.SIGNATURE_HEADER: signature}
        )
        return response.status_code

    async def notify(self, call: DialedCall, progress: Progress) -> None:
        """A status callback, if ``StatusCallbackEvent`` asked for this event."""
        url = call.params.get("StatusCallback")
        event, status = _WORDS[progress]
        wanted = call.params.get("StatusCallbackEvent") or "completed"
        if not url or event not in wanted.split():
            return
        form = self._common(call, status) | {"CallbackSource": "call-progress-events"}
        await self._signed_post(call, status, url, form)

    async def media_target(self, call: DialedCall) -> tuple[str, dict[str, str]]:
        """Request ``Url`` like Twilio (signed), and follow its ``<Connect><Stream>``."""
        url = call.params["Url"]
        form = self._common(call, "in-progress")
        signature = twilio.sign(self.auth_token, url, form)
        response = await self.post(
            call, "answer", url, form=form, headers={twilio.SIGNATURE_HEADER: signature}
        )
        if response.status_code != 200:
            raise CallRejectedError(
                f"answer URL returned HTTP {response.status_code}",
                status=response.status_code,
                body=response.text,
            )
        answer = twilio.parse_twiml(response.text)
        if answer.stream is None:
            raise CallRejectedError(
                "answer has no <Connect><Stream>", status=200, body=response.text
            )
        return answer.stream.url, dict(answer.stream.parameters)

    def protocol(self, call: DialedCall) -> CallerProtocol:
        """Media Streams, with the call's SIDs."""
        return twilio.TwilioProtocol(StreamIds(self.account_sid, call.sid, twilio.new_sid("MZ")))

    def wants_amd(self, call: DialedCall) -> bool:
        """``MachineDetection`` with ``AsyncAmd=true`` and a callback URL."""
        return bool(
            call.params.get("MachineDetection")
            and call.params.get("AsyncAmd") == "true"
            and call.params.get("AsyncAmdStatusCallback")
        )

    async def detect(self, call: DialedCall, machine: bool) -> None:
        """Post ``AnsweredBy`` (``machine_end_beep`` or ``human``)."""
        answered_by = "machine_end_beep" if machine else "human"
        form = {
            "AccountSid": self.account_sid,
            "CallSid": call.sid,
            "AnsweredBy": answered_by,
            "MachineDetectionDuration": str(2000 + secrets.randbelow(1000)),
        }
        await self._signed_post(
            call, f"amd:{answered_by}", call.params["AsyncAmdStatusCallback"], form
        )


def _one(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    return values[-1] if values else ""


def _error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status)


__all__ = ["Behaviour", "TwilioCarrier"]
