"""``voicebus eval scenarios.yaml --audio``: each scenario as a real call through the stack.

A scenario becomes a browser call (``POST /api/v1/browser-sessions``, the file's agent,
version and context) on which a phone (:mod:`.phone`) waits for the greeting, then says
each line, as a WAV file of it or spoken by the local caller voice, or presses its keys,
and waits for the agent's answer to end (``QUIET_S`` of silence) before the next. VAD,
turn detection, speech to text, the agent with its real tools, speech and barge-in all
run as on a live call. The call's stored events give the turns, timed, which the same
checks as a text eval judge, and a ``latency_p95_ms`` budget as well. Scenarios run
concurrently, ``--concurrency`` at a time.
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import AsyncIterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Final, Protocol

from websockets.exceptions import WebSocketException

from voicebus.cli.call_events import ended_events, turns_of
from voicebus.cli.edge import Edge
from voicebus.cli.phone import Phone
from voicebus.cli.scenarios import Scenario, ScenarioFile, ScenarioResult, ScenarioTurn, evaluate
from voicebus.contracts.replay import agent_version_of

RATE: Final = 16_000
"""The caller's audio: PCM16 at 16 kHz."""
QUIET_S: Final = 1.5
"""How long the agent must have been silent before the caller speaks again."""
GREETING_WITHIN_S: Final = 20.0
ANSWER_WITHIN_S: Final = 30.0
"""How long the caller waits for the agent to start answering (the greeting, a line)."""
VOICE_GROUP: Final = "voicebus.caller_voice"
"""Entry points giving a local voice for lines without a WAV file (the dev kit has one)."""


class Voice(Protocol):
    """Speaks a caller's line (a TTS engine)."""

    def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """PCM16 mono at ``sample_rate``, in pieces."""
        ...


class UnusableLineError(Exception):
    """A line that cannot be spoken (no voice, a WAV file in another format)."""


def local_voice() -> Voice | None:
    """The installed caller voice, if a package provides one."""
    for point in entry_points(group=VOICE_GROUP):
        found: Voice = point.load()()
        return found
    return None


def read_wav(path: Path) -> bytes:
    """A line recorded as a mono 16-bit 16 kHz WAV file.

    Raises:
        UnusableLineError: missing, or another format.
    """
    try:
        with wave.open(str(path)) as wav:
            shape = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
            if shape != (1, 2, RATE):
                raise UnusableLineError(f"{path}: not a mono 16-bit {RATE} Hz WAV file")
            frames: bytes = wav.readframes(wav.getnframes())
            return frames
    except (OSError, EOFError, wave.Error) as exc:
        raise UnusableLineError(f"{path}: {exc}") from None


async def line_audio(turn: ScenarioTurn, base: Path, voice: Voice | None) -> bytes:
    """The audio of a ``say`` line: its WAV file, or the voice speaking it.

    Raises:
        UnusableLineError: no WAV file and no voice installed, or a bad WAV file.
    """
    if turn.wav is not None:
        return read_wav(base / turn.wav)
    if voice is None:
        raise UnusableLineError(
            f"no caller voice to say {turn.say!r}: give the line a wav file, or install "
            "voicebus-devkit (its local voice speaks lines)"
        )
    assert turn.say is not None
    return b"".join([chunk async for chunk in voice.synthesize(turn.say, RATE)])


async def converse(phone: Phone, turns: list[ScenarioTurn], audio: list[bytes | None]) -> None:
    """The greeting, then each line or keys, each answered before the next."""
    await phone.answered(phone.opened_at, quiet_s=QUIET_S, within_s=GREETING_WITHIN_S)
    for turn, pcm in zip(turns, audio, strict=True):
        if phone.hung_up:
            return
        sent = await phone.say(pcm) if pcm is not None else await phone.press(turn.dtmf or "")
        await phone.answered(sent, quiet_s=QUIET_S, within_s=ANSWER_WITHIN_S)


async def run_scenario(
    spec: ScenarioFile, scenario: Scenario, edge: Edge, base: Path, voice: Voice | None
) -> ScenarioResult:
    """One scenario as a call; its result (an ``error`` when it could not run)."""
    started = time.monotonic()
    try:
        audio = [
            await line_audio(t, base, voice) if t.say is not None else None for t in scenario.turns
        ]
    except UnusableLineError as exc:
        return ScenarioResult(scenario.name, error=str(exc))
    body = {"agent_id": spec.agent, "agent_version": spec.version,
            "context": {**spec.context, **scenario.context}}  # fmt: skip
    session = await asyncio.to_thread(edge.json, "POST", "/browser-sessions", body)
    try:
        async with Phone(session["ws_url"], session["parameters"], RATE) as phone:
            await converse(phone, list(scenario.turns), audio)
    except (OSError, WebSocketException) as exc:
        return ScenarioResult(scenario.name, error=f"the call failed: {type(exc).__name__}: {exc}",
                              duration_s=time.monotonic() - started)  # fmt: skip
    events = await asyncio.to_thread(ended_events, edge, session["call_id"], 60.0)
    if events is None:
        return ScenarioResult(scenario.name, error=f"call {session['call_id']} did not end",
                              duration_s=time.monotonic() - started)  # fmt: skip
    result = evaluate(scenario, turns_of(events))
    result.version = agent_version_of((e["type"], e["data"]) for e in events)
    result.duration_s = time.monotonic() - started
    return result


async def run_all_audio(
    spec: ScenarioFile, edge: Edge, base: Path, concurrency: int
) -> list[ScenarioResult]:
    """Every scenario's result, in the file's order (``concurrency`` calls at once)."""
    gate = asyncio.Semaphore(concurrency)
    voice = local_voice()

    async def one(scenario: Scenario) -> ScenarioResult:
        async with gate:
            return await run_scenario(spec, scenario, edge, base, voice)

    return list(await asyncio.gather(*(one(s) for s in spec.scenarios)))
