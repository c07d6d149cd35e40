"""Helpers of the media tests: audio fixtures' shapes, a pipeline harness, polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.vad.vad_analyzer import VADParams

from voicebus.contracts.audio import AudioFrame
from voicebus.contracts.rpc import TurnSettings
from voicebus.engines.base import STTEngine, TTSEngine
from voicebus.media.amd import MachineDetector
from voicebus.media.events import CallEvents
from voicebus.media.models import SharedModels
from voicebus.media.outlet import CallOutlet
from voicebus.media.pipeline import CallPipeline, PipelineConfig

RATE = 8000
FRAME_BYTES = 320

LINES = {
    "order": "Hi, where is my order one two three four?",
    "thanks": "Thanks, that is all I needed.",
}


def silence(ms: int) -> bytes:
    """PCM16 silence at 8 kHz."""
    return bytes(RATE * ms // 1000 * 2)


def frames_of(pcm: bytes, *, start_seq: int = 0, start_ts: int = 0) -> list[AudioFrame]:
    """Cut 8 kHz PCM into 20 ms caller frames (the last padded)."""
    pcm += bytes(-len(pcm) % FRAME_BYTES)
    return [
        AudioFrame(pcm[i : i + FRAME_BYTES], RATE, start_seq + n, start_ts + 20 * n)
        for n, i in enumerate(range(0, len(pcm), FRAME_BYTES))
    ]


@dataclass
class Harness:
    """Builds and starts call pipelines over fakes; stops them all at the end."""

    models: SharedModels
    pipelines: list[CallPipeline]

    async def start(
        self,
        outlet: CallOutlet,
        *,
        stt: STTEngine | None = None,
        tts: TTSEngine | None = None,
        turn: TurnSettings | None = None,
        lead_ms: int = 160,
        mark_grace_ms: int = 1000,
        call_id: str = "c1",
        amd: bool = False,
    ) -> CallPipeline:
        """A started pipeline for one call."""
        turn = turn or TurnSettings()
        vad = self.models.vad(
            VADParams(start_secs=turn.min_speech_ms / 1000, stop_secs=turn.vad_stop_ms / 1000)
        )
        analyzer = (
            self.models.smart_turn(SmartTurnParams(stop_secs=2.0)) if turn.smart_turn else None
        )
        config = PipelineConfig(
            sample_rate=RATE,
            turn=turn,
            vad=vad,
            turn_analyzer=analyzer,
            stt=stt,
            tts=tts,
            lead_ms=lead_ms,
            mark_grace_ms=mark_grace_ms,
            amd=MachineDetector(RATE) if amd else None,
        )
        events = CallEvents("acme", call_id, "media/test")
        pipeline = CallPipeline(config, outlet, events, time.monotonic())
        await pipeline.start()
        self.pipelines.append(pipeline)
        return pipeline


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``condition`` (polling), or fail after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
