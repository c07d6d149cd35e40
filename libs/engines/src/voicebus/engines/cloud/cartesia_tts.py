"""``cartesia``: Cartesia Sonic over its TTS WebSocket, with word timestamps.

One generation request per text (``transcript``, ``continue: false``, a fresh
``context_id``, raw ``pcm_s16le`` at the call's rate, ``add_timestamps``); the server
answers ``chunk`` (base64 audio), ``timestamps`` (words with start/end seconds),
``done``, or ``error``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final

from voicebus.engines.base import TTS, EngineContext, EngineError, Options
from voicebus.engines.cloud._socket_tts import SocketTTS
from voicebus.engines.cloud._wire import endpoint_id, require_key, ws_url
from voicebus.engines.options import OptionReader
from voicebus.engines.streaming import SpeechChunk, WordTiming
from voicebus.engines.urls import check_url
from voicebus.engines.validation import choice_of

NAME: Final = "cartesia"
DEFAULT_URL: Final = "wss://api.cartesia.ai"
API_VERSION: Final = "2025-04-16"
MODELS: Final = ("sonic-2", "sonic-turbo", "sonic", "sonic-3")
LANGUAGES: Final = (
    "en",
    "fr",
    "de",
    "es",
    "pt",
    "zh",
    "ja",
    "hi",
    "it",
    "ko",
    "nl",
    "pl",
    "ru",
    "sv",
    "tr",
    "ta",
    "te",
    "bn",
    "mr",
    "gu",
    "kn",
    "ml",
    "pa",
)


class CartesiaTTS(SocketTTS):
    """Cartesia streaming TTS.

    Args:
        api_key: the tenant's key (``X-API-Key``).
        voice: voice id.
        model: model id.
        language: language code.
        base_url: API root (a stand-in's URL in tests).
        connect_timeout_s: handshake budget.
        allow_private: allow loopback/private hosts.
    """

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        voice: str,
        model: str = "sonic-2",
        language: str = "en",
        base_url: str = DEFAULT_URL,
        connect_timeout_s: float = 5.0,
        allow_private: bool = False,
    ) -> None:
        super().__init__(connect_timeout_s=connect_timeout_s, allow_private=allow_private)
        self.base_url = ws_url(base_url)
        self.voice = voice
        self.model = model
        self.language = language
        self.__key = api_key
        self.endpoint = endpoint_id(NAME, self.base_url, api_key)
        self._pending_words: list[WordTiming] = []

    def __repr__(self) -> str:
        return f"CartesiaTTS(base_url={self.base_url!r}, voice={self.voice!r})"

    def url(self, sample_rate: int) -> str:
        """``/tts/websocket``."""
        return f"{self.base_url}/tts/websocket"

    def headers(self) -> dict[str, str]:
        """The key and the API version."""
        headers = {"Cartesia-Version": API_VERSION}
        if self.__key:
            headers["X-API-Key"] = self.__key
        return headers

    def requests(self, text: str, context_id: str, sample_rate: int) -> list[str]:
        """One generation request for the whole text."""
        self._pending_words = []
        return [
            json.dumps(
                {
                    "model_id": self.model,
                    "transcript": text,
                    "continue": False,
                    "context_id": context_id,
                    "voice": {"mode": "id", "id": self.voice},
                    "language": self.language,
                    "add_timestamps": True,
                    "output_format": {
                        "container": "raw",
                        "encoding": "pcm_s16le",
                        "sample_rate": sample_rate,
                    },
                }
            )
        ]

    def read(
        self, message: dict[str, Any], context_id: str, sample_rate: int
    ) -> SpeechChunk | bool | None:
        """``chunk``, ``timestamps``, ``done`` or ``error``."""
        if message.get("context_id", context_id) != context_id:
            return None
        kind = message.get("type")
        if kind == "error":
            detail = str(message.get("error") or message.get("message") or "error")[:200]
            status = message.get("status_code")
            raise EngineError(
                f"{NAME}: the vendor reported an error ({status}): {detail}",
                retryable=not (isinstance(status, int) and 400 <= status < 500),
                kind="protocol",
            )
        if kind == "done":
            return True
        if kind == "timestamps":
            stamps = message.get("word_timestamps") or {}
            try:
                self._pending_words.extend(
                    WordTiming(str(w), float(s) * 1000, float(e) * 1000)
                    for w, s, e in zip(stamps["words"], stamps["start"], stamps["end"], strict=True)
                )
            except (KeyError, TypeError, ValueError):
                raise EngineError(
                    f"{NAME}: the vendor sent malformed timestamps", retryable=True, kind="protocol"
                ) from None
            return None
        if kind == "chunk":
            try:
                pcm = base64.b64decode(str(message["data"]), validate=True)
            except (KeyError, binascii.Error, ValueError):
                raise EngineError(
                    f"{NAME}: the vendor sent malformed audio", retryable=True, kind="protocol"
                ) from None
            words, self._pending_words = tuple(self._pending_words), []
            return SpeechChunk(pcm, words)
        return None


def create(options: Options, context: EngineContext) -> CartesiaTTS:
    """Factory: options ``voice`` (a voice id), ``model``, ``language``, ``base_url``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    voice = read.text("voice", "")
    if not voice or len(voice) > 64 or not all(c.isalnum() or c == "-" for c in voice):
        raise EngineError(f"{NAME}: option 'voice' must be a Cartesia voice id", kind="config")
    engine = CartesiaTTS(
        api_key=context.api_key,
        voice=voice,
        model=choice_of(NAME, "model", read.text("model", "sonic-2"), MODELS),
        language=choice_of(NAME, "language", read.text("language", "en"), LANGUAGES),
        base_url=base_url,
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def register() -> None:
    """Add ``cartesia`` to the TTS registry."""
    TTS.register(NAME, create)
