"""Live supervision's core: an operator's messages become the call's supervision events.

Pure: no socket, no bus. :class:`Supervisor` holds one operator's supervision of one
call (listening, holding the call or not, the call's sample rate once heard) and turns
each message from the page into the event to publish, or refuses it with a message
naming what was wrong. Operator audio is accepted only while the operator holds the
call and only at the call's rate, as whole 16-bit samples of at most a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final, TypedDict

from pydantic import ValidationError

from voicebus.contracts.audio import MAX_FRAME_BYTES, SAMPLE_RATES, encode_headers
from voicebus.contracts.events import (
    SupervisionEnded,
    SupervisionEndedData,
    SupervisionHandedBack,
    SupervisionHandedBackData,
    SupervisionHumanSaid,
    SupervisionHumanSaidData,
    SupervisionStarted,
    SupervisionStartedData,
    SupervisionTakenOver,
    SupervisionTakenOverData,
    SupervisionWhispered,
    SupervisionWhisperedData,
)
from voicebus.contracts.ids import new_id

LANE_CALLER: Final = 0
"""First byte of a binary message to the page: caller audio (``vb.audio.<call>.in``)."""
LANE_AGENT: Final = 1
"""First byte of a binary message to the page: agent audio (``vb.audio.<call>.out``)."""


OperatorEvent = (
    SupervisionWhispered | SupervisionTakenOver | SupervisionHumanSaid | SupervisionHandedBack
)
"""An event an operator's command becomes."""


class SupervisionError(ValueError):
    """A message from the page that cannot be acted on; the text says why."""


@dataclass(frozen=True, slots=True)
class OperatorFrame:
    """One frame of the operator's microphone, ready for ``vb.audio.<call>.out``."""

    pcm: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class Supervisor:
    """One operator supervising one call.

    Args:
        tenant_id: the call's tenant (the operator's).
        call_id: the call.
        operator: the operator's key id.
        source: ``edge/<instance>``, the events' source.
    """

    tenant_id: str
    call_id: str
    operator: str
    source: str
    sample_rate: int | None = None
    utterance_id: str | None = None
    _seq: int = field(default=0)
    _samples: int = field(default=0)

    @property
    def holding(self) -> bool:
        """Whether the operator holds the call (took it over, not handed back)."""
        return self.utterance_id is not None

    def heard(self, sample_rate: int) -> bool:
        """A caller frame arrived at ``sample_rate``; True if the call's rate is news."""
        if sample_rate == self.sample_rate or sample_rate not in SAMPLE_RATES:
            return False
        self.sample_rate = sample_rate
        return True

    def started(self) -> SupervisionStarted:
        """The event of the operator starting to listen."""
        data = SupervisionStartedData(operator=self.operator)
        return SupervisionStarted(**self._envelope(), data=data)

    def command(self, raw: str) -> OperatorEvent:
        """The event for one JSON command from the page.

        Commands: ``{"type": "whisper", "note": ...}``, ``{"type": "take_over"}``,
        ``{"type": "said", "text": ...}`` (a line the operator said, while holding the call),
        ``{"type": "hand_back"}``.

        Raises:
            SupervisionError: not JSON, an unknown type, a missing or invalid field, or a
                command that does not fit the state (``said`` without holding the call).
        """
        try:
            message = json.loads(raw)
        except ValueError:
            raise SupervisionError("a command must be a JSON object") from None
        if not isinstance(message, dict):
            raise SupervisionError("a command must be a JSON object")
        kind = message.get("type")
        try:
            if kind == "whisper":
                note = _text(message, "note")
                data = SupervisionWhisperedData(operator=self.operator, note=note)
                return SupervisionWhispered(**self._envelope(), data=data)
            if kind == "take_over":
                return self._take_over()
            if kind == "said":
                if not self.holding:
                    raise SupervisionError("said: take the call over first")
                text = _text(message, "text")
                said = SupervisionHumanSaidData(operator=self.operator, text=text)
                return SupervisionHumanSaid(**self._envelope(), data=said)
            if kind == "hand_back":
                back = self.hand_back()
                if back is None:
                    raise SupervisionError("hand_back: the call is not taken over")
                return back
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SupervisionError(f"{kind}: {where}: {first['msg']}") from None
        raise SupervisionError(
            "type: one of 'whisper', 'take_over', 'said', 'hand_back' is required"
        )

    def _take_over(self) -> SupervisionTakenOver:
        if self.holding:
            raise SupervisionError("take_over: the call is already taken over")
        if self.sample_rate is None:
            raise SupervisionError("take_over: no audio of the call has been heard yet")
        self.utterance_id = f"op-{new_id()}"
        data = SupervisionTakenOverData(operator=self.operator, utterance_id=self.utterance_id)
        return SupervisionTakenOver(**self._envelope(), data=data)

    def hand_back(self) -> SupervisionHandedBack | None:
        """The hand-back event, if the operator holds the call (the page left, or asked)."""
        if not self.holding:
            return None
        self.utterance_id = None
        data = SupervisionHandedBackData(operator=self.operator)
        return SupervisionHandedBack(**self._envelope(), data=data)

    def ended(self) -> SupervisionEnded:
        """The event of the operator closing the supervision."""
        data = SupervisionEndedData(operator=self.operator)
        return SupervisionEnded(**self._envelope(), data=data)

    def microphone(self, pcm: bytes) -> OperatorFrame:
        """The operator's microphone frame (PCM16LE at the call's rate) for ``audio.out``.

        Raises:
            SupervisionError: the operator does not hold the call, or the frame is not
                whole samples of at most one second.
        """
        if self.utterance_id is None or self.sample_rate is None:
            raise SupervisionError("audio: take the call over before sending audio")
        if not pcm or len(pcm) % 2 or len(pcm) > MAX_FRAME_BYTES:
            raise SupervisionError("audio: PCM16 frames of whole samples, at most one second")
        ts_ms = self._samples * 1000 // self.sample_rate
        headers = encode_headers(self.sample_rate, self._seq, ts_ms, self.utterance_id)
        self._seq += 1
        self._samples += len(pcm) // 2
        return OperatorFrame(pcm, headers)

    def _envelope(self) -> _Envelope:
        return {"tenant_id": self.tenant_id, "call_id": self.call_id, "source": self.source}


class _Envelope(TypedDict):
    tenant_id: str
    call_id: str
    source: str


def _text(message: dict[str, object], name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str):
        raise SupervisionError(f"{name}: a string is required")
    return value.strip()
