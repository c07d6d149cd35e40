"""``sarvam`` STT and TTS: Sarvam AI's REST APIs, for Indian languages.

TTS: ``POST /text-to-speech`` (``api-subscription-key``) answers ``{"audios": [<base64
WAV>]}`` for the text at ``speech_sample_rate`` (the call's rate: no resampling).
STT: ``POST /speech-to-text`` (multipart WAV) answers ``{"transcript",
"language_code"}``; ``language`` ``unknown`` detects it. One request per sentence
or turn; no word timings.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Final

from voicebus.engines.base import STT, TTS, EngineContext, EngineError, Options, Transcription
from voicebus.engines.cloud._http_speech import HttpEngine, wav_bytes, wav_pcm
from voicebus.engines.cloud._wire import endpoint_id, http_url, require_key
from voicebus.engines.options import OptionReader
from voicebus.engines.urls import check_url
from voicebus.engines.validation import choice_of

NAME: Final = "sarvam"
DEFAULT_URL: Final = "https://api.sarvam.ai"
LANGUAGES: Final = (
    "hi-IN",
    "bn-IN",
    "ta-IN",
    "te-IN",
    "kn-IN",
    "ml-IN",
    "mr-IN",
    "gu-IN",
    "pa-IN",
    "od-IN",
    "en-IN",
)
TTS_MODELS: Final = ("bulbul:v3", "bulbul:v4-flash")
SPEAKERS: Final = (
    "shubh",
    "aditya",
    "ritu",
    "priya",
    "neha",
    "rahul",
    "pooja",
    "rohan",
    "simran",
    "kavya",
    "amit",
    "dev",
    "ishita",
    "shreya",
    "ratan",
    "varun",
    "manan",
    "sumit",
    "roopa",
    "kabir",
    "aayan",
    "ashutosh",
    "advait",
    "anand",
    "tanya",
    "tarun",
    "sunny",
    "mani",
    "gokul",
    "vijay",
    "shruti",
    "suhani",
    "mohit",
    "kavitha",
    "rehan",
    "soham",
    "rupali",
)
TTS_RATES: Final = (8000, 16000, 22050, 24000)
STT_MODELS: Final = ("saarika:v2.5", "saaras:v3")


def _headers(api_key: str | None) -> dict[str, str]:
    return {"api-subscription-key": api_key} if api_key else {}


class SarvamTTS(HttpEngine):
    """Sarvam Bulbul."""

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_URL,
        language: str = "hi-IN",
        speaker: str = "shubh",
        model: str = "bulbul:v3",
        pace: float = 1.0,
        timeout_s: float = 30.0,
        allow_private: bool = False,
    ) -> None:
        base = http_url(base_url).rstrip("/")
        super().__init__(
            NAME, base, _headers(api_key), timeout_s=timeout_s, allow_private=allow_private
        )
        self.language, self.speaker, self.model, self.pace = language, speaker, model, pace
        self.endpoint = endpoint_id(NAME, base, api_key)

    def __repr__(self) -> str:
        return f"SarvamTTS(base_url={self._base_url!r}, speaker={self.speaker!r})"

    async def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """The text's audio at ``sample_rate``, in one piece.

        Raises:
            EngineError: refused, unreachable, or a malformed answer.
        """
        if not text.strip():
            return
        if sample_rate not in TTS_RATES:
            raise EngineError(f"{NAME}: no audio at {sample_rate} Hz", kind="config")
        body = {
            "text": text,
            "target_language_code": self.language,
            "speaker": self.speaker,
            "model": self.model,
            "pace": self.pace,
            "speech_sample_rate": sample_rate,
        }
        answer = await self.post_json("/text-to-speech", json=body)
        try:
            assert isinstance(answer, dict)
            audio = base64.b64decode(str(answer["audios"][0]), validate=True)
        except (AssertionError, KeyError, IndexError, TypeError, binascii.Error, ValueError):
            raise EngineError(
                f"{NAME}: the vendor's answer has no audio", retryable=True, kind="protocol"
            ) from None
        pcm, rate = wav_pcm(audio)
        if rate not in (0, sample_rate) or len(pcm) % 2:
            raise EngineError(
                f"{NAME}: the vendor sent audio at {rate} Hz", retryable=True, kind="protocol"
            )
        if pcm:
            yield pcm


class SarvamSTT(HttpEngine):
    """Sarvam Saarika, one request per turn."""

    name = NAME

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_URL,
        language: str = "hi-IN",
        model: str = "saarika:v2.5",
        timeout_s: float = 30.0,
        allow_private: bool = False,
    ) -> None:
        base = http_url(base_url).rstrip("/")
        super().__init__(
            NAME, base, _headers(api_key), timeout_s=timeout_s, allow_private=allow_private
        )
        self.language, self.model = language, model
        self.endpoint = endpoint_id(NAME, base, api_key)

    def __repr__(self) -> str:
        return f"SarvamSTT(base_url={self._base_url!r}, model={self.model!r})"

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcription:
        """Transcribe one turn.

        Raises:
            EngineError: refused, unreachable, or a malformed answer.
        """
        files = {"file": ("turn.wav", wav_bytes(pcm16, sample_rate), "audio/wav")}
        data = {"model": self.model, "language_code": self.language}
        answer = await self.post_json("/speech-to-text", data=data, files=files)
        if not isinstance(answer, dict) or not isinstance(answer.get("transcript"), str):
            raise EngineError(
                f"{NAME}: the vendor's answer has no transcript", retryable=True, kind="protocol"
            )
        language = answer.get("language_code")
        return Transcription(
            answer["transcript"].strip(), str(language) if language else self.language, None
        )


def create_tts(options: Options, context: EngineContext) -> SarvamTTS:
    """Factory: options ``language``, ``speaker`` (alias ``voice``), ``model``, ``pace``,
    ``base_url``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    speaker = read.optional_text("voice") or read.text("speaker", "shubh")
    engine = SarvamTTS(
        api_key=context.api_key,
        base_url=base_url,
        language=choice_of(NAME, "language", read.text("language", "hi-IN"), LANGUAGES),
        speaker=choice_of(NAME, "voice", speaker, SPEAKERS),
        model=choice_of(NAME, "model", read.text("model", "bulbul:v3"), TTS_MODELS),
        pace=read.number("pace", 1.0, low=0.5, high=2.0),
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def create_stt(options: Options, context: EngineContext) -> SarvamSTT:
    """Factory: options ``language`` (or ``unknown`` to detect), ``model``, ``base_url``."""
    read = OptionReader(NAME, options)
    base_url = check_url(
        NAME, read.text("base_url", DEFAULT_URL), allow_private=context.allow_private_urls
    )
    engine = SarvamSTT(
        api_key=context.api_key,
        base_url=base_url,
        language=choice_of(
            NAME, "language", read.text("language", "hi-IN"), (*LANGUAGES, "unknown")
        ),
        model=choice_of(NAME, "model", read.text("model", "saarika:v2.5"), STT_MODELS),
        allow_private=context.allow_private_urls,
    )
    read.finish()
    require_key(NAME, context.api_key)
    return engine


def register() -> None:
    """Add ``sarvam`` to the STT and TTS registries."""
    STT.register(NAME, create_stt)
    TTS.register(NAME, create_tts)
