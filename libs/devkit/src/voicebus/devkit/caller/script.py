"""``voicebus call``: a scripted simulated call with a live transcript.

The caller waits for the greeting, then speaks each line once the agent's reply
to the previous one has finished playing (or, with barge-in, once the reply has
played for a while), and prints what happens: its own lines as they are spoken,
the platform's view from the call's events (transcripts, replies, tools, the
recording) and the latency of each turn measured at the caller's ear.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import nats.errors

from voicebus.contracts.events import (
    AgentReply,
    AgentSpeechInterrupted,
    AgentSpeechStopped,
    CallEnded,
    CallError,
    CallEvent,
    RecordingReady,
    ToolCalled,
    ToolResult,
    TranscriptFinal,
)
from voicebus.devkit.caller.audio import read_wav
from voicebus.devkit.caller.errors import CallClosedError, CallerError
from voicebus.devkit.caller.events import follow_call_events
from voicebus.devkit.caller.exotel import exotel_caller
from voicebus.devkit.caller.plivo import PlivoCaller
from voicebus.devkit.caller.session import StreamCaller, TwilioCaller
from voicebus.devkit.caller.timeline import CallResult, Turn
from voicebus.devkit.caller.vobiz import VobizCaller
from voicebus.devkit.caller.voices import voice
from voicebus.engines.base import EngineError

Emit = Callable[[str, str, str], None]
"""``emit(label, text, style)``: one transcript line (style is a rich style name)."""

INBOUND_CALLERS: Final[dict[str, Callable[..., StreamCaller]]] = {
    "twilio": TwilioCaller,
    "plivo": PlivoCaller,
    "vobiz": VobizCaller,
    "exotel": exotel_caller,
}
"""Simulated inbound callers that place a call with a signed webhook and an auth token."""

_AFTER_CALL_S: Final = 5.0
_HANGUP_GRACE_S: Final = 3.0


@dataclass(frozen=True)
class Line:
    """One caller line: a text to synthesize, or a WAV file."""

    text: str | None = None
    wav: Path | None = None

    @property
    def label(self) -> str:
        """How the transcript shows it."""
        return self.text if self.text is not None else f"[{self.wav}]"


@dataclass(frozen=True)
class CallScript:
    """What ``voicebus call`` does.

    Attributes:
        gateway_url: the gateway's base URL.
        auth_token: the provider's auth token the gateway checks signatures with.
        agent: agent id.
        lines: the caller's lines, in order.
        context: call-context variables.
        public_url: the URL the gateway checks signatures against, if not the gateway's.
        nats_url: where to follow the call's events; None prints audio facts only.
        voice: TTS engine name for text lines (``tones`` for no TTS).
        barge_in_ms: speak each line after the first once this much of the agent's
            reply to the previous line has played, instead of waiting for its end.
        quiet_ms: silence that marks the end of an agent's reply.
        reply_timeout: seconds to wait for the agent to answer a line (or greet).
        timeout: bound on the whole call, in seconds.
        save_audio: write a stereo WAV (caller left, agent right) here.
        provider: whose protocol the caller speaks (a key of :data:`INBOUND_CALLERS`).
    """

    gateway_url: str
    auth_token: str
    agent: str
    lines: list[Line]
    context: dict[str, str] = field(default_factory=dict)
    public_url: str | None = None
    nats_url: str | None = None
    voice: str = "hibari"
    barge_in_ms: int | None = None
    quiet_ms: float = 1500
    reply_timeout: float = 30.0
    timeout: float = 180.0
    save_audio: Path | None = None
    provider: str = "twilio"


class _Transcript:
    """Turns events into transcript lines; remembers what makes the call a failure."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.errors: list[str] = []
        self.ended: CallEnded | None = None
        self.recording: RecordingReady | None = None
        self._shown_utterances: set[str] = set()
        self.changed = asyncio.Event()

    def on_event(self, event: CallEvent) -> None:
        match event:
            case TranscriptFinal(data=d):
                self.emit("stt", repr(d.text), "dim")
            case AgentReply(data=d):
                self._agent(d.utterance_id, d.text + ("" if d.complete else " …(cut)"))
            case AgentSpeechStopped(data=d):
                self._agent(d.utterance_id, d.text)
            case AgentSpeechInterrupted(data=d):
                self.emit("agent", f"(interrupted; the caller heard {d.text_heard!r})", "yellow")
            case ToolCalled(data=d):
                self.emit("tool", f"{d.name}({json.dumps(d.arguments)})", "magenta")
            case ToolResult(data=d):
                outcome = json.dumps(d.result) if d.ok else f"failed: {d.error}"
                self.emit("tool", f"{d.name} → {outcome}", "magenta")
            case CallError(data=d):
                self.errors.append(f"{d.code}: {d.message}")
                self.emit("error", f"{d.code}: {d.message}", "red")
            case CallEnded(data=d):
                self.ended = event
                self.emit("call", f"ended: {d.reason}", "bold")
            case RecordingReady(data=d):
                self.recording = event
                self.emit("recording", f"{d.uri} ({d.duration_s:.1f} s)", "bold")
            case _:
                pass
        self.changed.set()

    def _agent(self, utterance_id: str, text: str) -> None:
        if utterance_id not in self._shown_utterances and text.strip():
            self._shown_utterances.add(utterance_id)
            self.emit("agent", text, "cyan")

    def latency(self, turn: Turn) -> None:
        if turn.latency_ms is not None:
            self.emit("latency", f"turn {turn.index + 1}: {turn.latency_ms / 1000:.2f} s", "green")

    async def wait_for(self, done: Callable[[], bool], timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not done():
                    self.changed.clear()
                    await self.changed.wait()


async def run_call(
    script: CallScript, emit: Emit, on_started: Callable[[str], None] | None = None
) -> int:
    """Place the scripted call, printing the transcript through ``emit``.

    ``on_started`` receives the call id once the gateway has answered.

    Returns:
        The exit code: 0 when every line was spoken and answered, else 1 (2 for a bad
        voice or WAV file).
    """
    try:
        tts = voice(script.voice)
    except EngineError as err:
        emit("error", str(err), "red")
        return 2
    transcript = _Transcript(emit)
    caller = INBOUND_CALLERS[script.provider](
        script.gateway_url,
        script.auth_token,
        script.agent,
        script.context,
        public_url=script.public_url,
        voice=tts,
        on_turn_answered=transcript.latency,
    )
    try:
        audio = [await _render(caller, line) for line in script.lines]
    except (EngineError, ValueError, OSError) as err:
        emit("error", f"cannot prepare the caller's lines: {err}", "red")
        return 2
    try:
        await caller.start()
    except CallerError as err:
        emit("error", str(err), "red")
        return 1
    emit("call", f"{caller.call_id} → agent {script.agent!r} at {script.gateway_url}", "bold")
    if on_started is not None and caller.call_id:
        on_started(caller.call_id)
    async with contextlib.AsyncExitStack() as stack:
        following = False
        if script.nats_url and caller.call_id:
            try:
                await stack.enter_async_context(
                    follow_call_events(script.nats_url, caller.call_id, transcript.on_event)
                )
                following = True
            except (nats.errors.Error, OSError, TimeoutError):
                emit("note", f"no events: NATS at {script.nats_url} is not reachable", "yellow")
        try:
            async with asyncio.timeout(script.timeout):
                problems = await _converse(caller, script, audio, emit)
        except TimeoutError:
            problems = [f"the call took longer than {script.timeout:.0f} s"]
        result = await caller.hang_up()
        emit("call", "the agent hung up" if result.server_closed else "the caller hung up", "bold")
        if following:
            await transcript.wait_for(lambda: transcript.recording is not None, _AFTER_CALL_S)
    _summary(result, emit)
    if script.save_audio is not None:
        result.save_wav(script.save_audio)
        emit("audio", f"saved {script.save_audio} (left: caller, right: agent)", "bold")
    problems += transcript.errors + [f"protocol: {e}" for e in result.protocol_errors]
    for problem in problems:
        emit("error", problem, "red")
    return 1 if problems else 0


async def _render(caller: StreamCaller, line: Line) -> bytes:
    if line.wav is not None:
        return await asyncio.to_thread(read_wav, line.wav)
    return await caller.synthesize(line.text or "")


async def _converse(
    caller: StreamCaller, script: CallScript, audio: list[bytes], emit: Emit
) -> list[str]:
    """Greeting, then each line; the problems seen (empty when all went well)."""
    if not await caller.wait_for_agent_silence(script.quiet_ms, script.reply_timeout):
        if caller.closed:
            return ["the call ended before the caller spoke"]
        emit("note", f"no greeting within {script.reply_timeout:.0f} s; speaking anyway", "yellow")
    for index, (line, pcm) in enumerate(zip(script.lines, audio, strict=True)):
        emit("caller", line.label, "bold")
        try:
            turn = await caller.say_pcm(pcm, text=line.text)
        except CallClosedError:
            return [f"the agent hung up during line {index + 1}"]
        last = index + 1 == len(script.lines)
        if script.barge_in_ms is not None and not last:
            await caller.wait_for_agent_audio(script.barge_in_ms, script.reply_timeout)
        else:
            await caller.wait_for_agent_silence(script.quiet_ms, script.reply_timeout)
        if turn.first_agent_audio_ms is None:
            if caller.closed:
                return [f"the agent hung up without answering line {index + 1}"]
            return [f"no answer to line {index + 1} within {script.reply_timeout:.0f} s"]
        if caller.closed and not last:
            return [f"the agent hung up after line {index + 1}"]
    await caller.wait_closed(_HANGUP_GRACE_S)
    return []


def _summary(result: CallResult, emit: Emit) -> None:
    for turn in result.turns:
        latency = f"{turn.latency_ms / 1000:.2f} s" if turn.latency_ms is not None else "—"
        barge = " (barge-in)" if turn.barge_in else ""
        emit("summary", f"turn {turn.index + 1}{barge}: latency {latency}", "bold")
    emit(
        "summary",
        f"{result.duration_ms / 1000:.1f} s call, {result.heard_ms / 1000:.1f} s of agent audio, "
        f"{result.clears_received} clear(s), {len(result.marks_echoed)} mark(s) echoed",
        "bold",
    )
