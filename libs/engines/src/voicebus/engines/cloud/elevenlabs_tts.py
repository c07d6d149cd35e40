"""``elevenlabs``: ElevenLabs streaming TTS over its multi-context WebSocket.

``/v1/text-to-speech/{voice}/multi-stream-input`` with ``output_format=pcm_<rate>``
(raw PCM16 at the call's rate); each text is one context: an initializing message,
the text with ``flush``, then ``close_context``. Audio arrives base64 in JSON with
per-character ``alignment``, grouped here into word timings; ``isFinal`` ends the
context.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Final
from urllib.parse import urlencode

from voicebus.engines.base import TTS, EngineContext, EngineError, Options
from voicebus.engines.cloud._socket_tts import SocketTTS
from voicebus.engines.cloud._wire import endpoint_id, require_key, ws_url
from voicebus.engines.options import OptionReader
from voicebus.engines.streaming import SpeechChunk, WordTiming, words_from_chars
from voicebus.engines.urls import check_url
from voicebus.engines.validation import choice_of

NAME: Final = "elevenlabs"
DEFAULT_URL: Final = "wss://api.elevenlabs.io"
MODELS: Final = (
    "eleven_flash_v2_5",
    "eleven_flash_v2",
    "eleven_turbo_v2_5",
    "eleven_multilingual_v2",
)
RATES: Final = (8000, 16000, 22050, 24000, 44100)


class ElevenLabsTTS(SocketTTS):
    """ElevenLabs streaming TTS with character timings.

    Args:
        api_key: the tenant's key (``xi-api-key``).
        voice: voice id.
        model: model id.
        base_url: API root (a stand-in's URL in tests).
        stability: voice setting (0..1).
        similarity_boost: voice setting (0..1).
        connect_timeout_s: handshake budget.
        allow_private: allow loopback/private hosts.
    """

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        voice: str,
        model: str = "eleven_flash_v2_5",
        base_url: str = DEFAULT_URL,
        stability: float = 0.5,
        similarity_boost: float = 0.75,
        connect_timeout_s: float = 5.0,
        allow_private: bool = False,
    ) -> None:
        super().__init__(connect_timeout_s=connect_timeout_s, allow_private=allow_private)
        self.base_url = ws_url(base_url)
        self.voice = voice
        self.model = model
        self.stability = stability
        self.similarity_boost = similarity_boost
        self.__key = api_key
        self.endpoint = endpoint_id(NAME, self.base_url, api_key)
        self._offset_ms = 0.0

    def __repr__(self) -> str:
        return f"ElevenLabsTTS(base_url={self.base_url!r}, voice={self.voice!r})"

    def url(self, sample_rate: int) -> str:
        """The multi-context socket for PCM at ``sample_rate``."""
        if sample_rate not in RATES:
            raise EngineError(f"{NAME}: no PCM output at {sample_rate} Hz", kind="config")
        query = urlencode(
            {"model_id": self.model, "output_format": f"pcm_{sample_rate}", "auto_mode": "true"}
        )
        return f"{self.base_url}/v1/text-to-speech/{self.voice}/multi-stream-input?{query}"

    def headers(self) -> dict[str, str]:
        """``xi-api-key``."""
        return {"xi-api-key": self.__key} if self.__key else {}

    def requests(self, text: str, context_id: str, sample_rate: int) -> list[str]:
        """Initialize the context, send the text flushed, close the context."""
        self._offset_ms = 0.0
        settings = {"stability": self.stability, "similarity_boost": self.similarity_boost}
        return [
            json.dumps({"text": " ", "voice_settings": settings, "context_id": context_id}),
            json.dumps({"text": text.strip() + " ", "context_id": context_id, "flush": True}),
            json.dumps({"context_id": context_id, "close_context": True}),
        ]

    def read(
        self, message: dict[str, object], context_id: str, sample_rate: int
    ) -> SpeechChunk | bool | None:
        """Audio with alignment, ``isFinal``, or an error."""
        if message.get("contextId", context_id) != context_id:
            return None
        if "error" in message or ("message" in message and "audio" not in message):
            detail = str(message.get("message") or message.get("error"))[:200]
            raise EngineError(
                f"{NAME}: the vendor reported an error: {detail}", retryable=True, kind="protocol"
            )
        if message.get("isFinal") is True:
            return True
        audio = message.get("audio")
        if not isinstance(audio, str) or not audio:
            return None
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise EngineError(
                f"{NAME}: the vendor sent malformed audio", retryable=True, kind="protocol"
            ) from None
        words: tuple[WordTiming, ...] = ()
        alignment = message.get("alignment")
        if isinstance(alignment, dict):
            timed = words_from_chars(
                alignment.get("chars") or [],
                alignment.get("charStartTimesMs") or [],
                alignment.get("charDurationsMs") or [],
            )
            # Alignment times count from the chunk's start: put them on the text's clock.
            words = tuple(
                WordTiming(w.word, w.start_ms + self._offset_ms, w.end_ms + self._offset_ms)
                for w in timed
            )
        self._offset_ms += len(pcm) / 2 / sample_rate * 1000
        return SpeechChunk(pcm, words)


def create(options: Options, context: EngineContext) -> ElevenLabsTTS:
    """Factory: options ``voice`` (a voice id), ``model``, ``base_url``, ``stability``,
    ``similarity_boost``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    voice = read.text("voice", "")
    if not voice.isalnum() or len(voice) > 64:
        raise EngineError(
            f"{NAME}: option 'voice' must be an ElevenLabs voice id (letters and digits)",
            kind="config",
        )
    engine = ElevenLabsTTS(
        api_key=context.api_key,
        voice=voice,
        model=choice_of(NAME, "model", read.text("model", "eleven_flash_v2_5"), MODELS),
        base_url=base_url,
        stability=read.number("stability", 0.5, low=0.0, high=1.0),
        similarity_boost=read.number("similarity_boost", 0.75, low=0.0, high=1.0),
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def register() -> None:
    """Add ``elevenlabs`` to the TTS registry."""
    TTS.register(NAME, create)
