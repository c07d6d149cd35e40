"""A stand-in for Exotel's Connect Voice AI API and its callees.

Follows Exotel's public documentation ("AgentStream developer guide",
"StatusCallback"):

- ``POST /v1/accounts/{sid}/calls/connect`` (Basic auth: API key and token;
  form fields ``from``, ``callerid``, ``streamurl``, ``streamtype``,
  ``statuscallback``, ``statuscallbackevents[]``, ``customfield``) answers
  ``{"call": {"sid": ..., "status": "in-progress", ...}}``; an invalid number gets
  HTTP 400 with a ``RestException``.
- Once answered, the callee opens ``streamurl`` (credentials in the URL become
  Basic auth) and speaks AgentStream with the URL's query as custom parameters.
- Status callbacks are form posts to ``statuscallback`` for the subscribed
  events: ``ringing``, ``answered`` and ``terminal`` (``Status`` completed, busy,
  no-answer or failed).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import ClassVar, Final
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from voicebus.devkit.caller.exotel import ExotelProtocol, new_sid, split_credentials
from voicebus.devkit.caller.protocol import CallerProtocol, StreamIds
from voicebus.devkit.carriers.base import DialedCall, Progress, StandInCarrier

_WORDS: Final = {
    Progress.RINGING: ("ringing", "ringing"),
    Progress.ANSWERED: ("answered", "in-progress"),
    Progress.BUSY: ("terminal", "busy"),
    Progress.NO_ANSWER: ("terminal", "no-answer"),
    Progress.FAILED: ("terminal", "failed"),
    Progress.COMPLETED: ("terminal", "completed"),
}
"""Progress → (EventType, Status) Exotel reports; ``initiated`` has no callback."""
INVALID_NUMBER: Final = 34002


class ExotelCarrier(StandInCarrier):
    """Exotel's Connect Voice AI API on loopback (see the module docstring).

    Args:
        account_sid: the account in the API path.
        api_key: Basic auth user of the API.
        api_token: Basic auth password of the API.
        **kwargs: see :class:`~.base.StandInCarrier`.
    """

    name: ClassVar[str] = "exotel"

    def __init__(self, *, account_sid: str, api_key: str, api_token: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.account_sid = account_sid
        self._auth = "Basic " + base64.b64encode(f"{api_key}:{api_token}".encode()).decode()

    def routes(self) -> list[BaseRoute]:
        """``calls/connect`` (either path spelling)."""
        return [
            Route("/v1/accounts/{sid}/calls/connect", self._connect, methods=["POST"]),
            Route("/v1/Accounts/{sid}/Calls/connect", self._connect, methods=["POST"]),
        ]

    async def _connect(self, request: Request) -> Response:
        if request.headers.get("authorization") != self._auth:
            return _error(401, 20003, "Authentication failed")
        if request.path_params["sid"] != self.account_sid:
            return _error(404, 20404, "Account not found")
        form = await request.form()
        fields: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            fields.setdefault(name, []).append(str(value))
        params = {name: values[-1] for name, values in fields.items()}
        params["statuscallbackevents"] = " ".join(fields.get("statuscallbackevents[]", []))
        to, caller_id = params.get("from", ""), params.get("callerid", "")
        stream = params.get("streamurl", "")
        if not to or not caller_id or not stream.startswith(("ws://", "wss://")):
            return _error(400, 34001, "from, callerid and a ws(s):// streamurl are required")
        if params.get("streamtype") != "bidirectional":
            return _error(400, 34003, "streamtype must be bidirectional")
        if to.endswith("0006"):
            return _error(400, INVALID_NUMBER, "Invalid 'from' number")
        sid = new_sid()
        self.place(sid, to, caller_id, params)
        call = {
            "sid": sid,
            "status": "in-progress",
            "from": to,
            "phonenumbersid": caller_id,
            "direction": "outbound-api",
            "datecreated": _now(),
            "recordingurl": None,
        }
        return JSONResponse({"call": call})

    async def notify(self, call: DialedCall, progress: Progress) -> None:
        """A status callback for a subscribed event."""
        url = call.params.get("statuscallback")
        words = _WORDS.get(progress)
        if not url or words is None:
            return
        event, status = words
        if event not in call.params.get("statuscallbackevents", "terminal").split():
            return
        form = {
            "CallSid": call.sid,
            "EventType": event,
            "Status": status,
            "DateUpdated": _now(),
            "From": call.to_number,
            "To": call.to_number,
            "PhoneNumberSid": call.from_number,
            "CustomField": call.params.get("customfield", ""),
        }
        await self.post(call, status, url, form=form)

    async def media_target(self, call: DialedCall) -> tuple[str, dict[str, str]]:
        """``streamurl`` itself; its query is what Exotel passes as custom parameters."""
        url = call.params["streamurl"]
        bare, _ = split_credentials(url)
        return url, dict(parse_qsl(urlsplit(bare).query))

    def protocol(self, call: DialedCall) -> CallerProtocol:
        """AgentStream with the call's SID."""
        ids = StreamIds(self.account_sid, call.sid, new_sid())
        return ExotelProtocol(ids, from_number=call.to_number, to_number=call.from_number)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _error(status: int, code: int, message: str) -> JSONResponse:
    body = {"RestException": {"Status": status, "Code": code, "Message": message}}
    return JSONResponse(body, status_code=status)
