"""Stand-in carriers: a provider's REST API and its callees, on loopback.

A :class:`StandInCarrier` subclass serves one provider's call-placing API with
the provider's routes and JSON, so the real SDK client (pointed at
:attr:`StandInCarrier.base_url`) works against it. Each dialed call gets a
simulated callee whose behaviour is chosen by the number dialed
(:func:`behaviour_for`): it rings, then answers, is busy, does not answer,
fails, or is an answering machine; the API itself refuses numbers ending in
``0006``. An answered call does what the provider does: it reaches the
gateway's media WebSocket (fetching the answer markup first where the provider
does), runs a :class:`~voicebus.devkit.caller.session.StreamCaller` speaking the
provider's stream protocol, and posts signed status callbacks throughout.

Subclasses implement the provider-specific parts: :meth:`routes`,
:meth:`notify`, :meth:`media_target`, :meth:`protocol` (and :meth:`detect` for
answering-machine detection).
"""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import ClassVar, Final, Self
from urllib.parse import urlsplit, urlunsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from voicebus.devkit.caller.errors import CallerError
from voicebus.devkit.caller.protocol import CallerProtocol
from voicebus.devkit.caller.session import StreamCaller
from voicebus.devkit.caller.timeline import CallResult
from voicebus.devkit.ports import LOOPBACK, listening_socket
from voicebus.engines.base import TTSEngine


class Behaviour(StrEnum):
    """What the callee of a dialed number does."""

    ANSWER = "answer"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAIL = "fail"
    MACHINE = "machine"
    REJECT = "reject"
    """The REST API refuses the number (an invalid number): no call at all."""


SUFFIXES: Final = {
    "0002": Behaviour.BUSY,
    "0003": Behaviour.NO_ANSWER,
    "0004": Behaviour.FAIL,
    "0005": Behaviour.MACHINE,
    "0006": Behaviour.REJECT,
}
"""Last four digits of the dialed number → behaviour; any other number answers."""


def behaviour_for(number: str) -> Behaviour:
    """The callee behaviour of ``number`` (see :data:`SUFFIXES`)."""
    return SUFFIXES.get(number[-4:], Behaviour.ANSWER)


class Progress(StrEnum):
    """A call's progress, before each subclass words it as its provider does."""

    INITIATED = "initiated"
    RINGING = "ringing"
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    COMPLETED = "completed"


_FINAL: Final = {
    Behaviour.BUSY: Progress.BUSY,
    Behaviour.NO_ANSWER: Progress.NO_ANSWER,
    Behaviour.FAIL: Progress.FAILED,
}


@dataclass
class DialedCall:
    """One call placed through the stand-in's REST API.

    Attributes:
        sid: the carrier's call id.
        to_number: the number dialed.
        from_number: the caller id presented.
        behaviour: what the callee does.
        params: the REST request's parameters, as received.
        posted: every callback posted: (progress or kind, HTTP status of the answer).
        updates: REST modifications received for the live call (e.g. transfer markup).
        transferred_to: the number a transfer's ``<Dial><Number>`` markup dialed.
        whispered: what the transfer target heard before the caller was bridged.
        caller: the callee's stream session, once the media socket is open.
        beep_end_ms: a voicemail callee's end of beep, on the call's media timeline.
        result: what the callee heard and said, once the call ended.
        error: why the simulation itself failed, if it did.
        ended: set when the call is over.
    """

    sid: str
    to_number: str
    from_number: str
    behaviour: Behaviour
    params: dict[str, str]
    posted: list[tuple[str, int]] = field(default_factory=list)
    updates: list[dict[str, str]] = field(default_factory=list)
    transferred_to: str | None = None
    whispered: list[str] = field(default_factory=list)
    caller: StreamCaller | None = None
    beep_end_ms: float | None = None
    result: CallResult | None = None
    error: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def progress(self) -> list[str]:
        """What was posted, in order (without the HTTP statuses)."""
        return [what for what, _ in self.posted]


def parse_dial(text: str) -> tuple[str, str | None] | None:
    """The number ``<Response><Dial><Number>`` markup dials and the ``url`` its leg fetches.

    TwiML and Plivo XML alike; None when the markup is not XML or dials no number.
    """
    try:
        root = ET.fromstring(text)  # noqa: S314 - the gateway under test answered it
    except ET.ParseError:
        return None
    node = root.find("Dial/Number")
    number = (node.text or "").strip() if node is not None else ""
    if root.tag != "Response" or node is None or not number:
        return None
    return number, node.get("url")


Callee = Callable[[DialedCall, StreamCaller], Awaitable[None]]
"""What an answering callee does once media flows; the call completes when it returns."""


def wait_for_hangup(talk_s: float = 20.0) -> Callee:
    """A callee that listens until the agent hangs up, or hangs up itself after ``talk_s``."""

    async def callee(call: DialedCall, caller: StreamCaller) -> None:
        await caller.wait_closed(timeout=talk_s)

    return callee


class StandInCarrier(ABC):
    """A provider's REST API and callees on a loopback port (see the module docstring).

    Args:
        gateway_url: where the gateway listens (http://127.0.0.1:PORT).
        public_url: the gateway's public URL (``VB_GATEWAY_PUBLIC_URL``); URLs under it
            are reached on ``gateway_url``. The gateway URL when omitted.
        callee: what answering callees do; by default they wait for the agent's hang-up.
        machine_callee: what answering machines (``0005``) do; by default a voicemail
            (greeting, beep, recording) when ``callee`` is not given, else ``callee``.
        ring_s: how long each call rings before its outcome.
        voice: TTS of the callees' lines.
    """

    name: ClassVar[str]

    def __init__(
        self,
        *,
        gateway_url: str,
        public_url: str | None = None,
        callee: Callee | None = None,
        machine_callee: Callee | None = None,
        ring_s: float = 0.1,
        voice: TTSEngine | None = None,
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.public_url = (public_url or gateway_url).rstrip("/")
        self.callee = callee or wait_for_hangup()
        if machine_callee is None:
            from voicebus.devkit.carriers.voicemail import voicemail  # it imports this module

            machine_callee = voicemail() if callee is None else callee
        self.machine_callee = machine_callee
        self.ring_s = ring_s
        self.voice = voice
        self.calls: dict[str, DialedCall] = {}
        # Bound now, served later: the base URL goes into a stack's environment before
        # the stand-in starts, and no other server may take the port in between.
        self._socket = listening_socket()
        self.port: int = self._socket.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._serve: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._placed = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=15.0, trust_env=False)

    @property
    def base_url(self) -> str:
        """The REST API's base URL (what the SDK client is pointed at)."""
        return f"http://{LOOPBACK}:{self.port}"

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> Self:
        """Serve the REST API (answering machines get their greeting ready first)."""
        warm = getattr(self.machine_callee, "warm", None)
        if warm is not None:
            await warm()
        app = Starlette(routes=self.routes())
        config = uvicorn.Config(app, host=LOOPBACK, port=self.port, log_config=None, lifespan="off")
        self._server = uvicorn.Server(config)
        self._serve = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        async with asyncio.timeout(30):
            while not self._server.started:
                if self._serve.done():
                    raise CallerError(f"{self.name} stand-in did not start on port {self.port}")
                await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        """End every call still running and stop serving."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None and self._serve is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._serve, timeout=30)
        self._socket.close()
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_ended(self, sid: str | None = None, timeout: float = 60.0) -> DialedCall:
        """The call ``sid`` (or the first call placed) once it is over."""
        async with asyncio.timeout(timeout):
            while not self.calls or (sid is not None and sid not in self.calls):
                self._placed.clear()
                await self._placed.wait()
            call = self.calls[sid] if sid is not None else next(iter(self.calls.values()))
            await call.ended.wait()
        return call

    # -- what subclasses call ---------------------------------------------------

    def place(
        self, sid: str, to_number: str, from_number: str, params: Mapping[str, str]
    ) -> DialedCall:
        """Register a call the REST API accepted and start its callee."""
        call = DialedCall(sid, to_number, from_number, behaviour_for(to_number), dict(params))
        self.calls[sid] = call
        self._placed.set()
        task = asyncio.create_task(self._run(call), name=f"{self.name}-call-{sid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    async def post(
        self,
        call: DialedCall,
        what: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
    ) -> httpx.Response:
        """Send a callback to ``url`` (a public URL is reached on the gateway); recorded."""
        target = self.gateway_http(url)
        if method == "GET":
            response = await self._http.get(target, headers=dict(headers or {}))
        else:
            response = await self._http.post(target, data=dict(form or {}), headers=headers)
        call.posted.append((what, response.status_code))
        return response

    def gateway_http(self, url: str) -> str:
        """``url`` with the gateway's public address replaced by where it listens."""
        return _rebase(url, self.public_url, self.gateway_url)

    def gateway_ws(self, url: str) -> str:
        """A public ``ws(s)://`` URL of the gateway, as reached on loopback."""
        return _rebase(url, _ws(self.public_url), _ws(self.gateway_url))

    async def end_media(self, call: DialedCall) -> None:
        """The provider ends the call's media stream (a REST hang-up or new markup)."""
        if call.caller is not None:
            await call.caller.hang_up()

    # -- what subclasses implement ------------------------------------------------

    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The provider's REST routes (create, update, hang up calls)."""

    @abstractmethod
    async def notify(self, call: DialedCall, progress: Progress) -> None:
        """Post the provider's status callback for ``progress``, if it sends one."""

    @abstractmethod
    async def media_target(self, call: DialedCall) -> tuple[str, dict[str, str]]:
        """The media WebSocket URL (public) and stream parameters of an answered call."""

    @abstractmethod
    def protocol(self, call: DialedCall) -> CallerProtocol:
        """The stream protocol the callee speaks."""

    def wants_amd(self, call: DialedCall) -> bool:
        """Whether the dial request asked for answering-machine detection."""
        return False

    async def detect(self, call: DialedCall, machine: bool) -> None:
        """Post the provider's answering-machine detection result (if it has AMD)."""
        return None  # a provider without AMD posts nothing

    # -- the simulated call ---------------------------------------------------------

    async def _run(self, call: DialedCall) -> None:
        try:
            await self.notify(call, Progress.INITIATED)
            await asyncio.sleep(self.ring_s)
            await self.notify(call, Progress.RINGING)
            await asyncio.sleep(self.ring_s)
            final = _FINAL.get(call.behaviour)
            if final is not None:
                await self.notify(call, final)
                return
            await self.notify(call, Progress.ANSWERED)
            try:
                await self._talk(call)
            finally:  # an answered call completes, whatever happened to its media
                await self.notify(call, Progress.COMPLETED)
        except (CallerError, httpx.HTTPError, OSError, TimeoutError) as err:
            call.error = f"{type(err).__name__}: {err}"
        finally:
            if call.caller is not None and call.result is None:
                with contextlib.suppress(CallerError, OSError):
                    call.result = await call.caller.hang_up()
            call.ended.set()

    async def _talk(self, call: DialedCall) -> None:
        url, parameters = await self.media_target(call)
        caller = StreamCaller(self.protocol(call), voice=self.voice)
        call.caller = caller
        await caller.connect(self.gateway_ws(url), parameters)
        if self.wants_amd(call):
            await self.detect(call, machine=call.behaviour is Behaviour.MACHINE)
        machine = call.behaviour is Behaviour.MACHINE
        await (self.machine_callee if machine else self.callee)(call, caller)
        call.result = await caller.hang_up()


def _ws(http_url: str) -> str:
    return http_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def _rebase(url: str, public: str, local: str) -> str:
    """``url`` under ``public`` moved under ``local``; user info (Basic auth) is kept."""
    parts, pub, loc = urlsplit(url), urlsplit(public), urlsplit(local)
    host = parts.netloc.rpartition("@")[2]
    if (parts.scheme, host) != (pub.scheme, pub.netloc) or not parts.path.startswith(pub.path):
        return url
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{loc.netloc}" if userinfo else loc.netloc
    path = loc.path + parts.path[len(pub.path) :]
    return urlunsplit((loc.scheme, netloc, path, parts.query, parts.fragment))
