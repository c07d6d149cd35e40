"""Deepgram's streaming APIs: ``/v1/listen`` (live STT) and ``/v1/speak`` (Aura TTS).

Wire protocol as Deepgram documents it: the key in ``Authorization: Token <key>``
(401 otherwise); STT takes binary audio (``encoding``/``sample_rate`` in the query)
and ``KeepAlive``/``Finalize``/``CloseStream`` text messages, and answers ``Results``
(interim ``is_final: false``, then final with ``from_finalize: true``),
``SpeechStarted`` (with ``vad_events=true``) and a closing ``Metadata``. TTS takes
``Speak``/``Flush``/``Clear``/``Close`` and answers binary linear16 audio, ``Metadata``
and ``Flushed``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from voicebus.devkit.vendors.scenarios import SLOW_START_S, Recorded, Scenario
from voicebus.devkit.vendors.speech import decode, voice, word_times

if TYPE_CHECKING:
    from voicebus.devkit.vendors.server import VendorStandIn

STT: Final = "deepgram-stt"
TTS: Final = "deepgram-tts"
CHUNK_MS: Final = 100
_FAIL_AFTER_BYTES: Final = 8000  # ~0.5 s of μ-law: "mid-utterance"


def _key(websocket: WebSocket) -> str | None:
    auth = websocket.headers.get("authorization", "")
    return auth.removeprefix("Token ").strip() or None


async def _refuse(websocket: WebSocket, record: Recorded) -> bool:
    if record.key_ok and record.scenario is not Scenario.UNAUTHORIZED:
        return False
    body = json.dumps({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."})
    await websocket.send_denial_response(
        Response(body, status_code=401, media_type="application/json")
    )
    return True


def _results(text: str, start_s: float, duration_s: float, *, final: bool) -> str:
    words: list[dict[str, Any]] = [
        {
            "word": w.lower().strip(".,?!"),
            "start": start_s + s / 1000,
            "end": start_s + e / 1000,
            "confidence": 0.97,
            "punctuated_word": w,
        }
        for w, s, e in word_times(text, duration_s * 1000)
    ]
    return json.dumps(
        {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": duration_s,
            "start": start_s,
            "is_final": final,
            "speech_final": final,
            "from_finalize": final,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.97, "words": words}]},
            "metadata": {"request_id": str(uuid.uuid4()), "model_info": {"name": "standin"}},
        }
    )


async def listen(vendor: VendorStandIn, websocket: WebSocket) -> None:
    """Live transcription."""
    record = vendor.begin(websocket, STT, _key(websocket))
    if await _refuse(websocket, record):
        return
    await websocket.accept()
    encoding = record.query.get("encoding", "linear16")
    rate = int(record.query.get("sample_rate", "16000"))
    width = 1 if encoding == "mulaw" else 2
    turn = bytearray()
    offset_s = 0.0
    speaking = False
    scenario = record.scenario
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                audio: bytes = message["bytes"]
                if (
                    not speaking
                    and record.query.get("vad_events") == "true"
                    and _loud(decode(audio, encoding))
                ):
                    speaking = True
                    await websocket.send_text(
                        json.dumps(
                            {
                                "type": "SpeechStarted",
                                "channel": [0, 1],
                                "timestamp": offset_s + len(turn) / width / rate,
                            }
                        )
                    )
                turn += audio
                record.audio_bytes += len(audio)
                if record.audio_bytes >= _FAIL_AFTER_BYTES and await _fail(websocket, scenario):
                    return
                continue
            command = json.loads(message.get("text") or "{}")
            record.body.append(command)
            kind = command.get("type")
            if kind == "Finalize":
                if scenario is Scenario.HANG:
                    continue
                if scenario is Scenario.SLOW:
                    await asyncio.sleep(SLOW_START_S)
                duration = len(turn) / width / rate
                text = await vendor.transcriber(decode(bytes(turn), encoding), rate)
                if text:
                    first = " ".join(text.split()[: max(1, len(text.split()) // 2)])
                    await websocket.send_text(_results(first, offset_s, duration, final=False))
                await websocket.send_text(_results(text, offset_s, duration, final=True))
                offset_s += duration
                turn.clear()
                speaking = False
            elif kind == "CloseStream":
                await websocket.send_text(
                    json.dumps(
                        {
                            "type": "Metadata",
                            "request_id": str(uuid.uuid4()),
                            "duration": offset_s,
                            "channels": 1,
                        }
                    )
                )
                await websocket.close()
                return
    except WebSocketDisconnect:
        return


def _loud(pcm: bytes) -> bool:
    """Audio with sound in it (what Deepgram's VAD would call speech, roughly)."""
    samples = np.frombuffer(pcm, dtype="<i2")
    return bool(samples.size) and int(np.abs(samples.astype(np.int32)).max()) > 1000


async def _fail(websocket: WebSocket, scenario: Scenario) -> bool:
    """Break the stream as the scenario says; True when it was broken."""
    if scenario is Scenario.CLOSE_MID:
        await websocket.close(code=1011, reason="NET-0001")
        return True
    if scenario is Scenario.MALFORMED:
        await websocket.send_text('{"type": "Results", "channel": ')
        return True
    if scenario is Scenario.ERROR_MID:
        await websocket.send_text(
            json.dumps(
                {"type": "Error", "err_code": "DATA-0000", "description": "stand-in failure"}
            )
        )
        await websocket.close(code=1011)
        return True
    return False


async def speak(vendor: VendorStandIn, websocket: WebSocket) -> None:
    """Aura streaming TTS."""
    record = vendor.begin(websocket, TTS, _key(websocket))
    if await _refuse(websocket, record):
        return
    await websocket.accept()
    rate = int(record.query.get("sample_rate", "24000"))
    text: list[str] = []
    flushes = 0
    try:
        await websocket.send_text(
            json.dumps(
                {
                    "type": "Metadata",
                    "request_id": str(uuid.uuid4()),
                    "model_name": record.query.get("model", ""),
                }
            )
        )
        while True:
            command = json.loads(await websocket.receive_text())
            record.body.append(command)
            kind = command.get("type")
            if kind == "Speak":
                text.append(str(command.get("text", "")))
            elif kind == "Flush":
                spoken, text = " ".join(text), []
                pcm = voice(spoken, rate)
                if not await _stream_audio(websocket, record, pcm, rate, vendor.speed):
                    return
                await websocket.send_text(json.dumps({"type": "Flushed", "sequence_id": flushes}))
                flushes += 1
            elif kind == "Clear":
                text = []
                await websocket.send_text(json.dumps({"type": "Cleared", "sequence_id": flushes}))
            elif kind == "Close":
                await websocket.close()
                return
    except WebSocketDisconnect:
        return


async def _stream_audio(
    websocket: WebSocket, record: Recorded, pcm: bytes, rate: int, speed: float
) -> bool:
    """Send audio in chunks, ``speed`` × real time; False once the stream is broken."""
    scenario = record.scenario
    if scenario is Scenario.HANG:
        await asyncio.sleep(3600)
    if scenario is Scenario.SLOW:
        await asyncio.sleep(SLOW_START_S)
    step = rate * 2 * CHUNK_MS // 1000
    chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
    for index, chunk in enumerate(chunks):
        if index == max(1, len(chunks) // 2) and scenario in (
            Scenario.CLOSE_MID,
            Scenario.MALFORMED,
            Scenario.ERROR_MID,
        ):
            await _fail(websocket, scenario)
            return False
        await websocket.send_bytes(chunk)
        record.audio_bytes += len(chunk)
        await asyncio.sleep(CHUNK_MS / 1000 / speed)
    return True
