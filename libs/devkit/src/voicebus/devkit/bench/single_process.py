"""The turn-latency baseline: one process, no bus — pipecat's Silero VAD, then the same
local engines as the agent (whisper-local, the scripted LLM, hibari), called in turn.

Caller audio is fed at real time in 20 ms frames. Timed as the simulated caller
times a call: from the caller's last audible sample to the reply's first audible
sample, the synthesized audio played at real time from its first chunk; with
each stage's share.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState

from voicebus.engines.base import LLM, STT, TTS, ChatMessage, TextDelta, Warmable
from voicebus.engines.builtin import load_builtin_engines

RATE = 8000
FRAME = 320  # 20 ms of PCM16
AUDIBLE = 64
"""A sample louder than this is audible (as the simulated caller counts it)."""
_SENTENCE_END = (".", "!", "?")
_PREROLL_FRAMES = 25  # 300 ms preroll + 200 ms the VAD needs to confirm a start


def _loud(pcm: bytes) -> np.ndarray[tuple[int], np.dtype[np.intp]]:
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    return np.flatnonzero(np.abs(samples.astype(np.int32)) > AUDIBLE)


def last_audible(pcm: bytes) -> int:
    """Index of the last audible sample (the simulated caller's definition)."""
    loud = _loud(pcm)
    return int(loud[-1]) if loud.size else 0


def first_audible(pcm: bytes) -> int | None:
    """Index of the first audible sample, if any."""
    loud = _loud(pcm)
    return int(loud[0]) if loud.size else None


@dataclass
class Stages:
    """One turn's stages, ms from the end of the caller's speech."""

    vad_stop_ms: float
    stt_ms: float
    llm_first_token_ms: float
    first_sentence_ms: float
    tts_first_audio_ms: float
    total_ms: float
    text: str


class SingleProcessAgent:
    """The agent's engines in this process.

    Args:
        agent_file: the agent's YAML (its ``llm``, ``stt`` and ``tts`` choices are used).
        vad_stop_ms: silence that ends the caller's turn.
    """

    def __init__(self, agent_file: Path, vad_stop_ms: int = 300) -> None:
        logger.remove()
        load_builtin_engines()
        agent: dict[str, Any] = yaml.safe_load(agent_file.read_text())
        self.system = str(agent.get("system_prompt", ""))
        self.stt = STT.create(agent["stt"]["engine"], agent["stt"].get("options", {}))
        self.llm = LLM.create(agent["llm"]["engine"], agent["llm"].get("options", {}))
        self.tts = TTS.create(agent["tts"]["engine"], agent["tts"].get("options", {}))
        self.vad = SileroVADAnalyzer(params=VADParams(start_secs=0.2, stop_secs=vad_stop_ms / 1000))
        self.vad.set_sample_rate(RATE)

    async def warm(self) -> None:
        """Load every model before timing anything."""
        for engine in (self.stt, self.tts):
            if isinstance(engine, Warmable):
                await engine.warm()
        await self.turn(bytes(RATE * 2), warmup=True)

    async def turn(self, pcm: bytes, *, warmup: bool = False) -> Stages | None:
        """Speak ``pcm`` (then silence) at real time; the reply's stages."""
        audio = bytes(RATE * 2 // 2) + pcm + bytes(RATE * 2 * 2)
        frames = [audio[i : i + FRAME] for i in range(0, len(audio) - FRAME + 1, FRAME)]
        last_sample = last_audible(audio)
        last, offset = divmod(last_sample, FRAME // 2)
        last_offset_s = (offset + 1) / RATE
        loop = asyncio.get_running_loop()
        start = loop.time()
        end_at: float | None = None
        speaking = False
        onset = 0
        for k, frame in enumerate(frames):
            delay = start + k * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            state = await self.vad.analyze_audio(frame)
            if k == last:  # the caller's speech ends within this frame
                end_at = time.monotonic() + last_offset_s
            if state == VADState.STARTING and not speaking:
                onset = k
            if state == VADState.SPEAKING:
                speaking = True
            elif speaking and state == VADState.QUIET:
                if warmup or end_at is None:
                    return None
                # The turn's clip, as media cuts it: from a preroll before the onset.
                clip = audio[max(onset - _PREROLL_FRAMES, 0) * FRAME : (k + 1) * FRAME]
                return await self._reply(clip, end_at)
        return None

    async def _reply(self, audio: bytes, end_at: float) -> Stages:
        vad_at = time.monotonic()
        transcript = await self.stt.transcribe(audio, RATE)
        stt_at = time.monotonic()
        messages = [ChatMessage("system", self.system), ChatMessage("user", transcript.text)]
        first_token_at: float | None = None
        text = ""
        async for chunk in self.llm.stream(messages):
            if not isinstance(chunk, TextDelta):
                continue
            first_token_at = first_token_at or time.monotonic()
            text += chunk.text
            if text.rstrip().endswith(_SENTENCE_END):
                break
        sentence_at = time.monotonic()
        first_audio_at: float | None = None
        heard_at = sentence_at
        played = 0  # samples synthesized before this chunk: played at real time from the first
        async for audio in self.tts.synthesize(text.strip(), RATE):
            first_audio_at = first_audio_at or time.monotonic()
            audible = first_audible(audio)
            if audible is not None:
                heard_at = first_audio_at + (played + audible) / RATE
                break
            played += len(audio) // 2
        ms = 1000.0
        return Stages(
            vad_stop_ms=(vad_at - end_at) * ms,
            stt_ms=(stt_at - vad_at) * ms,
            llm_first_token_ms=((first_token_at or sentence_at) - stt_at) * ms,
            first_sentence_ms=(sentence_at - stt_at) * ms,
            tts_first_audio_ms=((first_audio_at or sentence_at) - sentence_at) * ms,
            total_ms=(heard_at - end_at) * ms,
            text=text.strip(),
        )
