"""Shared fixtures: the real local engines (models load once per session) and a stand-in
OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voicebus.engines.stt.whisper_local import WhisperLocalSTT
from voicebus.engines.tts.hibari import HibariTTS


@pytest.fixture(scope="session")
async def stt() -> WhisperLocalSTT:
    """whisper-local with the shared model loaded."""
    engine = WhisperLocalSTT()
    await engine.warm()
    return engine


@pytest.fixture(scope="session")
async def tts() -> HibariTTS:
    """hibari with the shared voice loaded and warmed."""
    engine = HibariTTS()
    await engine.warm()
    return engine


@pytest.fixture(scope="session")
def speak(tts: HibariTTS) -> Callable[[str, int], Awaitable[bytes]]:
    """Text → all its hibari audio at a rate, as one PCM16 buffer."""

    async def run(text: str, rate: int) -> bytes:
        return b"".join([chunk async for chunk in tts.synthesize(text, rate)])

    return run


# -- a stand-in OpenAI-compatible server ---------------------------------------------


Script = Callable[[dict[str, Any]], Response]


@dataclass
class StandIn:
    """A loopback server speaking the chat-completions streaming wire format.

    ``script`` decides the answer to each request; ``requests`` keeps what arrived.
    """

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    script: Script | None = None


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="session")
async def standin_server() -> AsyncIterator[StandIn]:
    """The stand-in server, running for the whole session."""
    sock = _free_socket()
    port = sock.getsockname()[1]
    state = StandIn(url=f"http://127.0.0.1:{port}/v1")

    async def completions(request: Request) -> Response:
        body = await request.json()
        state.requests.append(body)
        state.headers.append(dict(request.headers))
        if state.script is None:
            return JSONResponse({"error": {"message": "no script"}}, status_code=500)
        return state.script(body)

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield state
    server.should_exit = True
    await task
    sock.close()


@pytest.fixture
def standin(standin_server: StandIn) -> Iterator[StandIn]:
    """The stand-in server, with no script and no recorded requests."""
    standin_server.requests.clear()
    standin_server.headers.clear()
    standin_server.script = None
    yield standin_server
    standin_server.script = None
