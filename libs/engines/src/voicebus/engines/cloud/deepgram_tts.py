"""``deepgram`` TTS: Deepgram Aura over its streaming WebSocket (``/v1/speak``).

Each text is sent as ``Speak`` then ``Flush``; audio arrives as binary frames of
linear16 at the call's rate (no resampling), and ``Flushed`` ends it. One socket
per engine (a call's TTS speaks one chunk at a time), opened on first use and
again after any failure or abandoned stream. Deepgram gives no word timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Final
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voicebus.engines.base import TTS, EngineContext, EngineError, Options
from voicebus.engines.cloud._wire import endpoint_id, open_ws, parse_json, require_key, ws_url
from voicebus.engines.options import OptionReader
from voicebus.engines.urls import check_url
from voicebus.engines.validation import choice_of

NAME: Final = "deepgram"
DEFAULT_URL: Final = "wss://api.deepgram.com"
VOICES: Final = (
    "aura-2-thalia-en",
    "aura-2-andromeda-en",
    "aura-2-helena-en",
    "aura-2-apollo-en",
    "aura-2-arcas-en",
    "aura-2-aries-en",
    "aura-2-amalthea-en",
    "aura-2-celeste-es",
    "aura-2-estrella-es",
    "aura-asteria-en",
    "aura-luna-en",
    "aura-orion-en",
)


class DeepgramTTS:
    """Deepgram Aura streaming TTS.

    Args:
        api_key: the tenant's key.
        base_url: API root (a stand-in's URL in tests).
        voice: Aura model/voice name.
        connect_timeout_s: handshake budget.
        allow_private: allow loopback/private hosts.
    """

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_URL,
        voice: str = "aura-2-thalia-en",
        connect_timeout_s: float = 5.0,
        allow_private: bool = False,
    ) -> None:
        self.base_url = ws_url(base_url)
        self.voice = voice
        self.connect_timeout_s = connect_timeout_s
        self.allow_private = allow_private
        self.__key = api_key
        self.endpoint = endpoint_id(NAME, self.base_url, api_key)
        self._ws: ClientConnection | None = None
        self._rate = 0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"DeepgramTTS(base_url={self.base_url!r}, voice={self.voice!r})"

    async def _socket(self, sample_rate: int) -> ClientConnection:
        if self._ws is not None and self._rate == sample_rate:
            return self._ws
        await self.aclose()
        query = urlencode({"model": self.voice, "encoding": "linear16", "sample_rate": sample_rate})
        headers = {"Authorization": f"Token {self.__key}"} if self.__key else {}
        self._ws = await open_ws(
            NAME,
            f"{self.base_url}/v1/speak?{query}",
            headers,
            timeout_s=self.connect_timeout_s,
            allow_private=self.allow_private,
        )
        self._rate = sample_rate
        return self._ws

    async def aclose(self) -> None:
        """Close the socket."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """Yield linear16 audio at ``sample_rate`` as Deepgram streams it.

        Raises:
            EngineError: refused, closed, or a malformed or error message.
        """
        if not text.strip():
            return
        async with self._lock:
            finished = False
            try:
                ws = await self._socket(sample_rate)
                await ws.send(json.dumps({"type": "Speak", "text": text}))
                await ws.send(json.dumps({"type": "Flush"}))
                async for raw in ws:
                    if isinstance(raw, bytes):
                        if len(raw) % 2:
                            raise EngineError(
                                f"{NAME}: odd-sized audio frame", retryable=True, kind="protocol"
                            )
                        yield raw
                        continue
                    message = parse_json(NAME, raw)
                    kind = message.get("type")
                    if kind == "Flushed":
                        finished = True
                        return
                    if kind == "Error":
                        detail = str(message.get("description") or message.get("err_msg"))[:200]
                        raise EngineError(
                            f"{NAME}: the vendor reported an error: {detail}",
                            retryable=True,
                            kind="protocol",
                        )
                raise EngineError(
                    f"{NAME}: the vendor closed the stream", retryable=True, kind="closed"
                )
            except (ConnectionClosed, OSError) as exc:
                raise EngineError(
                    f"{NAME}: the vendor closed the stream", retryable=True, kind="closed"
                ) from exc
            finally:
                if not finished:  # failed or abandoned mid-text: start clean next time
                    await self.aclose()


def create(options: Options, context: EngineContext) -> DeepgramTTS:
    """Factory: options ``voice`` (an Aura model), ``base_url``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    engine = DeepgramTTS(
        api_key=context.api_key,
        base_url=base_url,
        voice=choice_of(NAME, "voice", read.text("voice", "aura-2-thalia-en"), VOICES),
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def register() -> None:
    """Add ``deepgram`` to the TTS registry."""
    TTS.register(NAME, create)
