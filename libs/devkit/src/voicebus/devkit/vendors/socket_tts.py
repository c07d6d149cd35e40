"""ElevenLabs' and Cartesia's TTS WebSockets: JSON in, base64 audio with timings out.

ElevenLabs (``/v1/text-to-speech/{voice}/multi-stream-input``): ``xi-api-key``;
messages carry ``context_id``; text with ``flush`` is spoken, ``close_context`` ends
the context; answers ``{audio, alignment: {chars, charStartTimesMs,
charDurationsMs}, contextId}`` then ``{isFinal: true, contextId}``.

Cartesia (``/tts/websocket``): ``X-API-Key`` and ``Cartesia-Version``; a generation
request per context; answers ``chunk`` (base64 ``data``), ``timestamps``
(``word_timestamps`` in seconds), ``done``, or ``error``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from voicebus.devkit.vendors.scenarios import SLOW_START_S, Recorded, Scenario
from voicebus.devkit.vendors.speech import voice, word_times

if TYPE_CHECKING:
    from voicebus.devkit.vendors.server import VendorStandIn

ELEVENLABS: Final = "elevenlabs"
CARTESIA: Final = "cartesia"
CHUNK_MS: Final = 100

Send = Callable[[bytes, list[tuple[str, float, float]], float], Awaitable[None]]


async def _refuse(websocket: WebSocket, record: Recorded) -> bool:
    if record.key_ok and record.scenario is not Scenario.UNAUTHORIZED:
        return False
    await websocket.send_denial_response(
        Response(
            json.dumps({"detail": {"status": "invalid_api_key"}}),
            status_code=401,
            media_type="application/json",
        )
    )
    return True


async def _speak(
    websocket: WebSocket,
    record: Recorded,
    text: str,
    rate: int,
    send: Send,
    fail: Callable[[], Awaitable[None]],
) -> bool:
    """Stream ``text``'s audio in chunks with the words each chunk starts; False if broken."""
    scenario = record.scenario
    if scenario is Scenario.HANG:
        await asyncio.sleep(3600)
    if scenario is Scenario.SLOW:
        await asyncio.sleep(SLOW_START_S)
    pcm = voice(text, rate)
    total_ms = len(pcm) / 2 / rate * 1000
    timings = word_times(text, total_ms)
    step = rate * 2 * CHUNK_MS // 1000
    starts = list(range(0, len(pcm), step))
    for index, offset in enumerate(starts):
        if index == max(1, len(starts) // 2) and scenario in (
            Scenario.CLOSE_MID,
            Scenario.MALFORMED,
            Scenario.ERROR_MID,
        ):
            await fail()
            return False
        chunk = pcm[offset : offset + step]
        begin = offset / 2 / rate * 1000
        end = begin + len(chunk) / 2 / rate * 1000
        words = [w for w in timings if begin <= w[1] < end]
        await send(chunk, words, begin)
        record.audio_bytes += len(chunk)
        await asyncio.sleep(CHUNK_MS / 10_000)
    return True


async def elevenlabs(vendor: VendorStandIn, websocket: WebSocket) -> None:
    """The multi-context stream-input socket."""
    record = vendor.begin(websocket, ELEVENLABS, websocket.headers.get("xi-api-key"))
    if await _refuse(websocket, record):
        return
    await websocket.accept()
    rate = int(record.query.get("output_format", "pcm_16000").removeprefix("pcm_"))
    texts: dict[str, list[str]] = {}
    try:
        while True:
            message = json.loads(await websocket.receive_text())
            record.body.append(message)
            context = str(message.get("context_id", ""))
            if message.get("close_socket"):
                await websocket.close()
                return
            if message.get("close_context"):
                await websocket.send_text(json.dumps({"isFinal": True, "contextId": context}))
                continue
            texts.setdefault(context, []).append(str(message.get("text", "")))
            if not message.get("flush"):
                continue
            spoken = "".join(texts.pop(context, [])).strip()

            async def send(
                chunk: bytes,
                words: list[tuple[str, float, float]],
                begin: float,
                context: str = context,
            ) -> None:
                chars: list[str] = []
                starts: list[float] = []
                durations: list[float] = []
                for word, start, end in words:
                    per = (end - start) / max(len(word), 1)
                    for i, char in enumerate(word + " "):
                        chars.append(char)
                        starts.append(round(start - begin + i * per))
                        durations.append(round(per))
                await websocket.send_text(
                    json.dumps(
                        {
                            "audio": base64.b64encode(chunk).decode(),
                            "contextId": context,
                            "alignment": {
                                "chars": chars,
                                "charStartTimesMs": starts,
                                "charDurationsMs": durations,
                            },
                        }
                    )
                )

            async def fail(context: str = context) -> None:
                await _break(
                    websocket,
                    record.scenario,
                    {
                        "message": "stand-in failure",
                        "error": "internal",
                        "code": 1011,
                        "contextId": context,
                    },
                )

            if not await _speak(websocket, record, spoken, rate, send, fail):
                return
    except WebSocketDisconnect:
        return


async def cartesia(vendor: VendorStandIn, websocket: WebSocket) -> None:
    """``/tts/websocket``."""
    record = vendor.begin(websocket, CARTESIA, websocket.headers.get("x-api-key"))
    if await _refuse(websocket, record):
        return
    await websocket.accept()
    try:
        while True:
            request: dict[str, Any] = json.loads(await websocket.receive_text())
            record.body.append(request)
            context = str(request.get("context_id", ""))
            rate = int(request.get("output_format", {}).get("sample_rate", 24000))

            async def send(
                chunk: bytes,
                words: list[tuple[str, float, float]],
                begin: float,
                context: str = context,
            ) -> None:
                if words:
                    await websocket.send_text(
                        json.dumps(
                            {
                                "type": "timestamps",
                                "context_id": context,
                                "status_code": 206,
                                "done": False,
                                "word_timestamps": {
                                    "words": [w for w, _, _ in words],
                                    "start": [s / 1000 for _, s, _ in words],
                                    "end": [e / 1000 for _, _, e in words],
                                },
                            }
                        )
                    )
                await websocket.send_text(
                    json.dumps(
                        {
                            "type": "chunk",
                            "context_id": context,
                            "status_code": 206,
                            "done": False,
                            "data": base64.b64encode(chunk).decode(),
                            "step_time": 10.0,
                        }
                    )
                )

            async def fail(context: str = context) -> None:
                await _break(
                    websocket,
                    record.scenario,
                    {
                        "type": "error",
                        "context_id": context,
                        "status_code": 500,
                        "done": True,
                        "error": "stand-in failure",
                    },
                )

            if not await _speak(
                websocket, record, str(request.get("transcript", "")), rate, send, fail
            ):
                return
            await websocket.send_text(
                json.dumps(
                    {"type": "done", "context_id": context, "status_code": 200, "done": True}
                )
            )
    except WebSocketDisconnect:
        return


async def _break(websocket: WebSocket, scenario: Scenario, error: dict[str, Any]) -> None:
    if scenario is Scenario.CLOSE_MID:
        await websocket.close(code=1011)
    elif scenario is Scenario.MALFORMED:
        await websocket.send_text('{"audio": ')
    else:
        await websocket.send_text(json.dumps(error))


async def cartesia_stt(vendor: VendorStandIn, websocket: WebSocket) -> None:
    """``/stt/websocket``: binary audio, ``finalize``/``close`` text commands."""
    record = vendor.begin(websocket, "cartesia-stt", websocket.headers.get("x-api-key"))
    if await _refuse(websocket, record):
        return
    await websocket.accept()
    rate = int(record.query.get("sample_rate", "16000"))
    turn = bytearray()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                turn += message["bytes"]
                record.audio_bytes += len(message["bytes"])
                if record.audio_bytes >= 16000 and record.scenario in (
                    Scenario.CLOSE_MID,
                    Scenario.MALFORMED,
                    Scenario.ERROR_MID,
                ):
                    await _break(
                        websocket, record.scenario, {"type": "error", "message": "stand-in failure"}
                    )
                    return
                continue
            command = message.get("text") or ""
            record.body.append(command)
            if command == "finalize":
                if record.scenario is Scenario.HANG:
                    continue
                if record.scenario is Scenario.SLOW:
                    await asyncio.sleep(SLOW_START_S)
                text = await vendor.transcriber(bytes(turn), rate)
                duration = len(turn) / 2 / rate
                words = word_times(text, duration * 1000)
                if text:
                    half = " ".join(text.split()[: max(1, len(text.split()) // 2)])
                    await websocket.send_text(
                        json.dumps(
                            {
                                "type": "transcript",
                                "is_final": False,
                                "text": half,
                                "language": "en",
                            }
                        )
                    )
                await websocket.send_text(
                    json.dumps(
                        {
                            "type": "transcript",
                            "is_final": True,
                            "text": text,
                            "duration": duration,
                            "language": "en",
                            "words": [
                                {"word": w, "start": s / 1000, "end": e / 1000} for w, s, e in words
                            ],
                        }
                    )
                )
                await websocket.send_text(json.dumps({"type": "flush_done"}))
                turn.clear()
            elif command == "close":
                await websocket.send_text(json.dumps({"type": "done"}))
                await websocket.close()
                return
    except WebSocketDisconnect:
        return
