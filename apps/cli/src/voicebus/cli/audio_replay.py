"""``voicebus replay CALL --audio``: the recorded caller, heard again by the real stack.

The caller channel of the call's stereo recording is played, in real time and from the
call's first moment, into a new browser call (``POST /api/v1/browser-sessions``) with the
call's context, against an agent version (pinned, live or older). Everything the live
path does runs again: VAD and turn detection, speech to text, the agent, speech, barge-in.
The new call's events are then compared with the recorded call's, turn by turn: what was
heard from the caller, replies, flow path, tool calls with arguments, the end, and each
turn's latency.

The replay listens like a phone: agent audio is "played" at real speed and each playback
mark is echoed when the audio before it has played (a ``clear`` drops what is left and
echoes the pending marks at once), so the agent is paced, and can be interrupted, as on
the recorded call.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import io
import json
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from voicebus.cli.edge import Edge, fail
from voicebus.contracts.replay import (
    ReplayReport,
    TurnRecord,
    agent_version_of,
    diff_turns,
    timed_turns,
)

CHUNK_MS: Final = 20
"""Caller audio is sent in 20 ms pieces, as a phone would."""
AGENT_RATE: Final = 16_000
"""The gateway's browser calls send the agent's audio as PCM16 at 16 kHz."""
_PAGE: Final = 500


@dataclass(frozen=True, slots=True)
class CallerAudio:
    """One channel of PCM16 at ``sample_rate``."""

    pcm: bytes
    sample_rate: int

    @property
    def seconds(self) -> float:
        """Its length."""
        return len(self.pcm) / 2 / self.sample_rate

    def chunks(self) -> Iterator[bytes]:
        """20 ms pieces, the last one shorter."""
        size = self.sample_rate * CHUNK_MS // 1000 * 2
        for start in range(0, len(self.pcm), size):
            yield self.pcm[start : start + size]


def caller_channel(wav_bytes: bytes) -> CallerAudio:
    """The caller's (left) channel of a recording: stereo PCM16 WAV, caller left.

    Samples are taken two bytes at a time and never read as numbers, so their byte order
    (little-endian, in the file and on the wire) is kept on any machine.

    Raises:
        ValueError: not a stereo 16-bit WAV.
    """
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        if wav.getnchannels() != 2 or wav.getsampwidth() != 2:
            raise ValueError("the recording is not a stereo 16-bit WAV")
        rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
    samples = array.array("h")
    samples.frombytes(frames[: len(frames) // 4 * 4])
    return CallerAudio(samples[0::2].tobytes(), rate)


@dataclass(slots=True)
class Listener:
    """The far end of the call as the platform sees a phone: it plays the agent's audio at
    real speed and confirms each mark once the audio before it has played."""

    ws: ClientConnection
    played_until: float = 0.0
    """Monotonic time the agent audio received so far ends playing."""
    marks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    """Marks waiting for the audio before them to play, by name."""

    def agent_audio(self, pcm: bytes) -> None:
        """Agent audio queued behind what is still playing."""
        now = time.monotonic()
        self.played_until = max(self.played_until, now) + len(pcm) / 2 / AGENT_RATE

    def mark(self, name: str) -> None:
        """Confirm ``name`` once the audio received before it has played."""
        delay = max(0.0, self.played_until - time.monotonic())
        self.marks[name] = asyncio.create_task(self._echo(name, delay))

    async def clear(self) -> None:
        """Drop what is left to play; marks waiting for it are confirmed now."""
        self.played_until = time.monotonic()
        waiting, self.marks = self.marks, {}
        for task in waiting.values():
            task.cancel()
        for name in waiting:
            await self._echo(name, 0.0)

    async def _echo(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self.marks.pop(name, None)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps({"type": "mark", "name": name}))

    async def listen(self) -> None:
        """Until the gateway closes the call (the agent hung up, or after ``stop``)."""
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.agent_audio(message)
                    continue
                try:
                    body = json.loads(message)
                except ValueError:
                    continue
                if body.get("type") == "mark" and isinstance(body.get("name"), str):
                    self.mark(body["name"])
                elif body.get("type") == "clear":
                    await self.clear()

    def quiet_since(self, since: float) -> float:
        """Seconds the agent has been silent, counted from ``since`` at the earliest."""
        return max(0.0, time.monotonic() - max(self.played_until, since))


async def play(
    ws_url: str, parameters: dict[str, str], caller: CallerAudio, *, quiet_s: float, limit_s: float
) -> bool:
    """Play the caller into a new call, then let the agent finish (``quiet_s`` of silence
    after its last audio) and hang up. True when the agent hung up first."""
    async with connect(ws_url, open_timeout=10, max_size=2**20) as ws:
        start = {"type": "start", "parameters": parameters,
                 "format": {"encoding": "s16le", "sample_rate": caller.sample_rate}}  # fmt: skip
        await ws.send(json.dumps(start))
        listener = Listener(ws)
        listening = asyncio.create_task(listener.listen())
        began = time.monotonic()
        try:
            async with asyncio.timeout(limit_s):
                for i, chunk in enumerate(caller.chunks()):
                    await asyncio.sleep(max(0.0, began + i * CHUNK_MS / 1000 - time.monotonic()))
                    if listening.done():
                        return True  # the agent hung up while the caller was still talking
                    await ws.send(chunk)
                caller_done = time.monotonic()
                # Until the agent has been silent for quiet_s (its audio may still come).
                while (left := quiet_s - listener.quiet_since(caller_done)) > 0:
                    await asyncio.wait({listening}, timeout=left)
                    if listening.done():
                        return True
                if listening.done():
                    return True
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps({"type": "stop"}))
                await listening
                return False
        finally:
            listening.cancel()
            for task in listener.marks.values():
                task.cancel()


def _events(edge: Edge, call_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = edge.json("GET", f"/calls/{call_id}/events", params={"limit": _PAGE, "after": after})
        events += page["events"]
        after = page.get("next_after")
        if after is None:
            return events


def _ended(edge: Edge, call_id: str, timeout_s: float) -> list[dict[str, Any]]:
    """The new call's events once its ``call.ended`` is stored."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = _events(edge, call_id)
        if any(e["type"].startswith("call.ended.") for e in events):
            return events
        if time.monotonic() > deadline:
            raise fail(f"the replay call {call_id} did not end within {timeout_s:g} s")
        time.sleep(0.5)


def _timed(events: list[dict[str, Any]]) -> list[TurnRecord]:
    return timed_turns([(e["type"], datetime.fromisoformat(e["time"]), e["data"]) for e in events])


def replay_audio(
    edge: Edge,
    call_id: str,
    *,
    agent_id: str | None,
    agent_version: int | None,
    quiet_s: float = 4.0,
) -> tuple[ReplayReport, str]:
    """Replay the call's recorded caller against an agent version; the report and the new
    call's id."""
    recorded = _events(edge, call_id)
    started = next((e for e in recorded if e["type"].startswith("call.started.")), None)
    if started is None:
        raise fail(f"call {call_id} never started: nothing to replay")
    try:
        caller = caller_channel(edge.request("GET", f"/calls/{call_id}/recording.wav").content)
    except (ValueError, wave.Error, EOFError) as exc:
        raise fail(f"the recording of call {call_id} cannot be read: {exc}") from None
    agent = agent_id or str(started["data"]["agent_id"])
    body = {"agent_id": agent, "agent_version": agent_version,
            "context": dict(started["data"].get("context") or {})}  # fmt: skip
    session = edge.json("POST", "/browser-sessions", body)
    limit_s = caller.seconds + 120.0
    try:
        asyncio.run(play(session["ws_url"], session["parameters"], caller, quiet_s=quiet_s,
                         limit_s=limit_s))  # fmt: skip
    except (OSError, WebSocketException, TimeoutError) as exc:
        raise fail(f"the replay call could not be played: {type(exc).__name__}: {exc}") from None
    new_call = session["call_id"]
    replayed = _ended(edge, new_call, timeout_s=60.0)
    original, again = _timed(recorded), _timed(replayed)
    report = ReplayReport(
        call_id=call_id,
        agent_id=agent,
        original_version=agent_version_of((e["type"], e["data"]) for e in recorded),
        replayed_version=agent_version_of((e["type"], e["data"]) for e in replayed),
        original=original,
        replayed=again,
        differences=diff_turns(original, again),
    )
    return report, new_call
