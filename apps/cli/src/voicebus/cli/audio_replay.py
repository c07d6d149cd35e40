"""``voicebus replay CALL --audio``: the recorded caller, heard again by the real stack.

The caller channel of the call's stereo recording is played, in real time and from the
call's first moment, into a new browser call (``POST /api/v1/browser-sessions``) with the
call's context, against an agent version (pinned, live or older). Everything the live
path does runs again: VAD and turn detection, speech to text, the agent, speech, barge-in.
The new call's events are then compared with the recorded call's, turn by turn: what was
heard from the caller, replies, flow path, tool calls with arguments, the end, and each
turn's latency.

The replay calls as a phone does (:mod:`.phone`): in real time, hearing the agent at real
speed, so the agent is paced, and can be interrupted, as on the recorded call.
"""

from __future__ import annotations

import array
import asyncio
import io
import wave
from dataclasses import dataclass

from websockets.exceptions import WebSocketException

from voicebus.cli.call_events import ended_events, events_of, turns_of
from voicebus.cli.edge import Edge, fail
from voicebus.cli.phone import Phone
from voicebus.contracts.replay import ReplayReport, agent_version_of, diff_turns


@dataclass(frozen=True, slots=True)
class CallerAudio:
    """One channel of PCM16 at ``sample_rate``."""

    pcm: bytes
    sample_rate: int

    @property
    def seconds(self) -> float:
        """Its length."""
        return len(self.pcm) / 2 / self.sample_rate


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


async def play(
    ws_url: str, parameters: dict[str, str], caller: CallerAudio, *, quiet_s: float, limit_s: float
) -> bool:
    """Play the caller into a new call, then let the agent finish (``quiet_s`` of silence
    after its last audio) and hang up. True when the agent hung up first."""
    async with asyncio.timeout(limit_s), Phone(ws_url, parameters, caller.sample_rate) as phone:
        said = await phone.say(caller.pcm)
        await phone.silent(said, quiet_s)
        return phone.hung_up


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
    recorded = events_of(edge, call_id)
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
    replayed = ended_events(edge, new_call, timeout_s=60.0)
    if replayed is None:
        raise fail(f"the replay call {new_call} did not end within 60 s")
    original, again = turns_of(recorded), turns_of(replayed)
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
