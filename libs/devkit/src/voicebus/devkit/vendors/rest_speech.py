"""OpenAI's audio endpoints and Sarvam's speech APIs, as their documentation describes them.

OpenAI (``Authorization: Bearer``): ``POST /v1/audio/speech`` streams raw 24 kHz PCM16
for ``response_format: pcm``; ``POST /v1/audio/transcriptions`` takes a multipart
file and answers ``{"text"}``. Errors are ``{"error": {"message", "type"}}``.

Sarvam (``api-subscription-key``): ``POST /text-to-speech`` answers ``{"request_id",
"audios": [<base64 WAV>]}``; ``POST /speech-to-text`` takes a multipart file and
answers ``{"request_id", "transcript", "language_code"}``. Errors are
``{"error": {"message", "code"}}``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
import wave
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from voicebus.devkit.vendors.scenarios import SLOW_START_S, Recorded, Scenario
from voicebus.devkit.vendors.speech import voice

if TYPE_CHECKING:
    from voicebus.devkit.vendors.server import VendorStandIn

OPENAI_TTS: Final = "openai-tts"
OPENAI_STT: Final = "openai-stt"
SARVAM_TTS: Final = "sarvam-tts"
SARVAM_STT: Final = "sarvam-stt"
OPENAI_RATE: Final = 24_000


def _bearer(request: Request) -> str | None:
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None


def _refused(record: Recorded) -> bool:
    return not record.key_ok or record.scenario is Scenario.UNAUTHORIZED


def _error(status: int, message: str) -> Response:
    return JSONResponse(
        {"error": {"message": message, "type": "standin_error", "code": status}}, status_code=status
    )


async def _before(record: Recorded) -> Response | None:
    """What a one-shot request gets in a failing scenario (None: answer normally)."""
    if record.scenario is Scenario.SLOW:
        await asyncio.sleep(SLOW_START_S)
    if record.scenario is Scenario.HANG:
        await asyncio.sleep(3600)
    if record.scenario in (Scenario.ERROR_MID, Scenario.CLOSE_MID):
        return _error(500, "stand-in failure")
    if record.scenario is Scenario.MALFORMED:
        return Response('{"text": ', media_type="application/json")
    return None


def _pcm(data: bytes) -> tuple[bytes, int]:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


def _wav(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


async def openai_speech(vendor: VendorStandIn, request: Request) -> Response:
    """``/v1/audio/speech``: raw PCM, streamed."""
    record = vendor.begin(request, OPENAI_TTS, _bearer(request))
    if _refused(record):
        return _error(401, "Incorrect API key provided")
    body = await request.json()
    record.body.append(body)
    if body.get("response_format") != "pcm":
        return _error(400, "stand-in: only response_format pcm is served")
    pcm = voice(str(body.get("input", "")), OPENAI_RATE)

    async def stream() -> AsyncIterator[bytes]:
        if record.scenario is Scenario.SLOW:
            await asyncio.sleep(SLOW_START_S)
        if record.scenario is Scenario.HANG:
            await asyncio.sleep(3600)
        step = OPENAI_RATE * 2 // 10
        for index, offset in enumerate(range(0, len(pcm), step)):
            if index == 2 and record.scenario in (
                Scenario.CLOSE_MID,
                Scenario.ERROR_MID,
                Scenario.MALFORMED,
            ):
                raise ConnectionResetError("stand-in cut the stream")
            record.audio_bytes += len(pcm[offset : offset + step])
            yield pcm[offset : offset + step]
            await asyncio.sleep(0.01)

    return StreamingResponse(stream(), media_type="audio/pcm")


async def openai_transcriptions(vendor: VendorStandIn, request: Request) -> Response:
    """``/v1/audio/transcriptions``."""
    record = vendor.begin(request, OPENAI_STT, _bearer(request))
    if _refused(record):
        return _error(401, "Incorrect API key provided")
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return _error(400, "file is required")
    pcm, rate = _pcm(await upload.read())
    record.body.append({k: v for k, v in form.items() if isinstance(v, str)})
    record.audio_bytes += len(pcm)
    failure = await _before(record)
    if failure is not None:
        return failure
    return JSONResponse({"text": await vendor.transcriber(pcm, rate)})


async def sarvam_tts(vendor: VendorStandIn, request: Request) -> Response:
    """``/text-to-speech``."""
    record = vendor.begin(request, SARVAM_TTS, request.headers.get("api-subscription-key"))
    if _refused(record):
        return JSONResponse(
            {"error": {"message": "Invalid API key", "code": "invalid_api_key"}}, status_code=403
        )
    body = await request.json()
    record.body.append(body)
    failure = await _before(record)
    if failure is not None:
        return failure
    rate = int(body.get("speech_sample_rate", 22050))
    audio = _wav(voice(str(body.get("text", "")), rate), rate)
    return JSONResponse(
        {"request_id": str(uuid.uuid4()), "audios": [base64.b64encode(audio).decode()]}
    )


async def sarvam_stt(vendor: VendorStandIn, request: Request) -> Response:
    """``/speech-to-text``."""
    record = vendor.begin(request, SARVAM_STT, request.headers.get("api-subscription-key"))
    if _refused(record):
        return JSONResponse(
            {"error": {"message": "Invalid API key", "code": "invalid_api_key"}}, status_code=403
        )
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return JSONResponse({"error": {"message": "file is required"}}, status_code=400)
    pcm, rate = _pcm(await upload.read())
    record.body.append({k: v for k, v in form.items() if isinstance(v, str)})
    failure = await _before(record)
    if failure is not None:
        return failure
    language = str(form.get("language_code", "hi-IN"))
    return JSONResponse(
        {
            "request_id": str(uuid.uuid4()),
            "transcript": await vendor.transcriber(pcm, rate),
            "language_code": "hi-IN" if language == "unknown" else language,
        }
    )
