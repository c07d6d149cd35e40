"""The stand-in vendors' server: every vendor's paths on one loopback port.

In-process (``async with VendorStandIn() as vendors``) for tests, or as its own
process (``python -m voicebus.devkit.vendors --port N``) so a benchmark can kill it
mid-sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from voicebus.devkit.ports import LOOPBACK, free_port
from voicebus.devkit.vendors import anthropic, deepgram, gemini, rest_speech, socket_tts
from voicebus.devkit.vendors.scenarios import TEST_KEY, Recorded, Scenario
from voicebus.devkit.vendors.speech import Transcriber, warm_whisper, whisper_transcriber

Handler = Callable[..., Awaitable[object]]


class VendorStandIn:
    """Stand-in vendor APIs on a loopback port.

    Args:
        transcriber: what the STT stand-ins hear in the audio they get (the local
            whisper by default).
        reply: the LLM stand-ins' answer to the caller's last words.
        key: the only API key accepted (others get 401).
        port: the port; a free one by default.
        speed: how much faster than real time synthesized audio is sent (vendors stream
            a few times faster; 1.0 paces it like playback, so a kill lands mid-sentence).
    """

    def __init__(
        self,
        *,
        transcriber: Transcriber = whisper_transcriber,
        reply: Callable[[str], str] | None = None,
        key: str = TEST_KEY,
        port: int | None = None,
        speed: float = 10.0,
    ) -> None:
        self.speed = speed
        self.transcriber = transcriber
        self.reply = reply or (
            lambda heard: f"You said {heard.strip() or 'nothing'}. Anything else?"
        )
        self.key = key
        self.port = port or free_port()
        self.requests: list[Recorded] = []
        self._server: uvicorn.Server | None = None
        self._serve: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:PORT``)."""
        return f"http://{LOOPBACK}:{self.port}"

    def base_url(self, scenario: Scenario | str = Scenario.OK, *, ws: bool = False) -> str:
        """The base URL that runs ``scenario`` (``ws://`` for WebSocket vendors if asked)."""
        root = f"{'ws' if ws else 'http'}://{LOOPBACK}:{self.port}"
        return root if Scenario(scenario) is Scenario.OK else f"{root}/s/{scenario}"

    def recorded(self, vendor: str) -> list[Recorded]:
        """Requests one vendor's stand-in received, in order."""
        return [r for r in self.requests if r.vendor == vendor]

    def begin(self, conn: HTTPConnection, vendor: str, key: str | None) -> Recorded:
        """Record a request (keys are compared, never kept)."""
        scenario = Scenario.of(conn.path_params.get("scenario"))
        record = Recorded(vendor, conn.url.path, dict(conn.query_params), scenario, key == self.key)
        self.requests.append(record)
        return record

    def routes(self) -> list[BaseRoute]:
        """Every vendor's routes, plain and under ``/s/<scenario>``."""
        plain: list[BaseRoute] = [
            WebSocketRoute("/v1/listen", self._ws(deepgram.listen)),
            WebSocketRoute("/v1/speak", self._ws(deepgram.speak)),
            Route("/v1/messages", self._http(anthropic.messages), methods=["POST"]),
            WebSocketRoute(
                "/v1/text-to-speech/{voice}/multi-stream-input", self._ws(socket_tts.elevenlabs)
            ),
            WebSocketRoute("/tts/websocket", self._ws(socket_tts.cartesia)),
            WebSocketRoute("/stt/websocket", self._ws(socket_tts.cartesia_stt)),
            Route(
                "/v1beta/models/{model}:streamGenerateContent",
                self._http(gemini.generate),
                methods=["POST"],
            ),
            Route("/v1/audio/speech", self._http(rest_speech.openai_speech), methods=["POST"]),
            Route(
                "/v1/audio/transcriptions",
                self._http(rest_speech.openai_transcriptions),
                methods=["POST"],
            ),
            Route("/text-to-speech", self._http(rest_speech.sarvam_tts), methods=["POST"]),
            Route("/speech-to-text", self._http(rest_speech.sarvam_stt), methods=["POST"]),
        ]
        scoped: list[BaseRoute] = []
        for route in plain:
            path = "/s/{scenario}" + route.path  # type: ignore[attr-defined]  # both kinds have it
            if isinstance(route, WebSocketRoute):
                scoped.append(WebSocketRoute(path, route.endpoint))
            elif isinstance(route, Route):
                scoped.append(Route(path, route.endpoint, methods=["POST"]))
        return plain + scoped

    def _ws(self, handler: Handler) -> Callable[[WebSocket], Awaitable[None]]:
        async def endpoint(websocket: WebSocket) -> None:
            await handler(self, websocket)

        return endpoint

    def _http(self, handler: Handler) -> Callable[..., Awaitable[Response]]:
        async def endpoint(request: object) -> Response:
            response = await handler(self, request)
            assert isinstance(response, Response)
            return response

        return endpoint

    async def start(self) -> Self:
        """Serve on the port (the local whisper loaded first when it is the transcriber)."""
        if self.transcriber is whisper_transcriber:
            await warm_whisper()
        app = Starlette(routes=self.routes())
        config = uvicorn.Config(
            app,
            host=LOOPBACK,
            port=self.port,
            log_config=None,
            lifespan="off",
            ws="websockets-sansio",
            ws_ping_interval=None,
        )
        self._server = uvicorn.Server(config)
        self._serve = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(30):
            while not self._server.started:
                if self._serve.done():
                    raise RuntimeError(f"vendor stand-in did not start on port {self.port}")
                await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is not None and self._serve is not None:
            self._server.should_exit = True
            self._server.force_exit = True
            await asyncio.wait_for(self._serve, timeout=30)
            self._server = self._serve = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
