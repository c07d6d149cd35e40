"""The caller's mouth: lines waiting to be spoken, one 20 ms frame per tick."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Final

from voicebus.devkit.caller.audio import FRAME_BYTES, FRAME_SAMPLES, frames, last_audible
from voicebus.devkit.caller.errors import CallClosedError
from voicebus.devkit.caller.playout import Playout
from voicebus.devkit.caller.timeline import Timeline, Turn

SILENT_FRAME: Final = bytes(FRAME_BYTES)
BARGE_IN_WINDOW_MS: Final = 100.0
"""A line starting this soon after agent audio played counts as a barge-in."""


@dataclass
class _Line:
    frames: list[bytes]
    text: str | None
    speech_end: int
    """Sample index of the line's last audible sample (its end, if silent)."""
    done: asyncio.Future[Turn]
    position: int = 0
    turn: Turn | None = None


class LineQueue:
    """Lines in speaking order; each resolves to its :class:`Turn` once fully sent."""

    def __init__(self) -> None:
        self._lines: deque[_Line] = deque()

    def add(self, pcm: bytes, text: str | None) -> asyncio.Future[Turn]:
        """Queue PCM16LE 8 kHz audio behind the lines already queued."""
        line_frames = frames(pcm) or [SILENT_FRAME]
        end = last_audible(pcm)
        line = _Line(
            frames=line_frames,
            text=text,
            speech_end=end if end is not None else len(line_frames) * FRAME_SAMPLES - 1,
            done=asyncio.get_running_loop().create_future(),
        )
        self._lines.append(line)
        return line.done

    def next_frame(self, timeline: Timeline, playout: Playout) -> bytes:
        """The caller's audio for the coming tick; starts and ends turns on ``timeline``."""
        if not self._lines:
            return SILENT_FRAME
        line = self._lines[0]
        if line.position == 0:
            last = timeline.last_heard_ms
            playing = playout.pending_samples > 0 or (
                last is not None and last >= timeline.now_ms - BARGE_IN_WINDOW_MS
            )
            line.turn = timeline.begin_turn(line.text, barge_in=playing)
        assert line.turn is not None
        index = line.position
        line.position += 1
        if index == line.speech_end // FRAME_SAMPLES:
            timeline.end_turn(line.turn, line.speech_end % FRAME_SAMPLES + 1, playout.appended)
        return line.frames[index]

    def frame_sent(self) -> None:
        """After a tick: resolve the line whose last frame was just sent."""
        if self._lines and self._lines[0].position == len(self._lines[0].frames):
            line = self._lines.popleft()
            assert line.turn is not None
            if not line.done.done():
                line.done.set_result(line.turn)

    def abandon(self) -> None:
        """The call ended: every unfinished line fails with :class:`CallClosedError`."""
        for line in self._lines:
            if not line.done.done():
                line.done.set_exception(CallClosedError("the call ended while speaking"))
        self._lines.clear()
