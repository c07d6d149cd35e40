"""``openai`` STT and TTS: OpenAI's audio endpoints (and compatible servers).

TTS: ``POST /v1/audio/speech`` with ``response_format: pcm`` streams raw 24 kHz PCM16,
resampled here to the call's rate as it arrives. STT: ``POST /v1/audio/transcriptions``
(multipart WAV) per turn: a segment engine, adapted to sessions by the batch session.
Neither gives word timings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import httpx
import numpy as np

from voicebus.engines.audio import StreamResampler, float_to_pcm16, pcm16_to_float
from voicebus.engines.base import STT, TTS, EngineContext, EngineError, Options, Transcription
from voicebus.engines.cloud._http_speech import HttpEngine, wav_bytes
from voicebus.engines.cloud._wire import (
    endpoint_id,
    http_url,
    raise_for_response,
    require_key,
    transport_error,
)
from voicebus.engines.options import OptionReader
from voicebus.engines.urls import check_resolved, check_url
from voicebus.engines.validation import choice_of

NAME: Final = "openai"
DEFAULT_URL: Final = "https://api.openai.com/v1"
OPENAI_PCM_RATE: Final = 24_000
TTS_MODELS: Final = ("gpt-4o-mini-tts", "tts-1", "tts-1-hd")
VOICES: Final = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)
STT_MODELS: Final = ("gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1")


class OpenAITTS(HttpEngine):
    """OpenAI speech, streamed as PCM."""

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_URL,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        timeout_s: float = 30.0,
        allow_private: bool = False,
    ) -> None:
        base = http_url(base_url).rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(NAME, base, headers, timeout_s=timeout_s, allow_private=allow_private)
        self.model, self.voice = model, voice
        self.endpoint = endpoint_id(NAME, base, api_key)

    def __repr__(self) -> str:
        return f"OpenAITTS(base_url={self._base_url!r}, voice={self.voice!r})"

    async def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """PCM16 at ``sample_rate`` as it streams.

        Raises:
            EngineError: refused, unreachable, or the stream broke.
        """
        if not text.strip():
            return
        await check_resolved(NAME, self._base_url, allow_private=self._allow_private)
        body = {"model": self.model, "voice": self.voice, "input": text, "response_format": "pcm"}
        resampler = StreamResampler(OPENAI_PCM_RATE, sample_rate)
        odd = b""
        try:
            async with self._client.stream("POST", "/audio/speech", json=body) as response:
                await raise_for_response(NAME, response)
                async for piece in response.aiter_bytes():
                    data, odd = odd + piece, b""
                    if len(data) % 2:
                        data, odd = data[:-1], data[-1:]
                    out = float_to_pcm16(resampler.process(pcm16_to_float(data)))
                    if out:
                        yield out
        except httpx.HTTPError as exc:
            raise transport_error(NAME, exc) from exc
        tail = float_to_pcm16(resampler.process(np.zeros(0, np.float32), last=True))
        if tail:
            yield tail


class OpenAISTT(HttpEngine):
    """OpenAI transcriptions, one request per turn."""

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_URL,
        model: str = "gpt-4o-mini-transcribe",
        language: str | None = "en",
        timeout_s: float = 30.0,
        allow_private: bool = False,
    ) -> None:
        base = http_url(base_url).rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(NAME, base, headers, timeout_s=timeout_s, allow_private=allow_private)
        self.model, self.language = model, language
        self.endpoint = endpoint_id(NAME, base, api_key)

    def __repr__(self) -> str:
        return f"OpenAISTT(base_url={self._base_url!r}, model={self.model!r})"

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcription:
        """Transcribe one turn.

        Raises:
            EngineError: refused, unreachable, or a malformed answer.
        """
        data = {"model": self.model, "response_format": "json"}
        if self.language:
            data["language"] = self.language
        files = {"file": ("turn.wav", wav_bytes(pcm16, sample_rate), "audio/wav")}
        answer = await self.post_json("/audio/transcriptions", data=data, files=files)
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise EngineError(
                f"{NAME}: the vendor's answer has no text", retryable=True, kind="protocol"
            )
        return Transcription(answer["text"].strip(), self.language, None)


def create_tts(options: Options, context: EngineContext) -> OpenAITTS:
    """Factory: options ``voice``, ``model``, ``base_url``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    engine = OpenAITTS(
        api_key=context.api_key,
        base_url=base_url,
        model=choice_of(NAME, "model", read.text("model", "gpt-4o-mini-tts"), TTS_MODELS),
        voice=choice_of(NAME, "voice", read.text("voice", "alloy"), VOICES),
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def create_stt(options: Options, context: EngineContext) -> OpenAISTT:
    """Factory: options ``model``, ``language`` (ISO-639-1; ``auto`` to detect), ``base_url``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    language = read.text("language", "en")
    if language != "auto" and not (len(language) == 2 and language.isalpha()):
        raise EngineError(
            f"{NAME}: option 'language' is {language!r}; use an ISO-639-1 code or 'auto'",
            kind="config",
        )
    engine = OpenAISTT(
        api_key=context.api_key,
        base_url=base_url,
        model=choice_of(NAME, "model", read.text("model", "gpt-4o-mini-transcribe"), STT_MODELS),
        language=None if language == "auto" else language,
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def register() -> None:
    """Add ``openai`` to the STT and TTS registries."""
    STT.register(NAME, create_stt)
    TTS.register(NAME, create_tts)
