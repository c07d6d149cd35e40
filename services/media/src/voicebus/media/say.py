"""Assembling ``ctl.say`` chunks into utterances, in order.

Pure. Chunks of one utterance arrive numbered from 0; the last has ``final``. Core
NATS keeps one publisher's order, but a retried or re-sent command can repeat a
chunk, and a chunk can arrive after its utterance was interrupted; both must be
dropped, not spoken twice or spoken over the caller.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

from voicebus.contracts.commands import SayData


@dataclass(frozen=True, slots=True)
class SayChunk:
    """One chunk ready to synthesize.

    Attributes:
        utterance_id: the utterance it belongs to.
        seq: its number within the utterance.
        text: what to say (may be empty on the final chunk).
        final: the last chunk of the utterance.
        allow_interruptions: whether caller speech may cut the utterance.
        received_at: monotonic time the chunk arrived.
        agent_id: the agent speaking it (None: the call's agent).
    """

    utterance_id: str
    seq: int
    text: str
    final: bool
    allow_interruptions: bool
    received_at: float
    agent_id: str | None = None


class Dropped(StrEnum):
    """Why a chunk was not accepted."""

    DUPLICATE = "duplicate"
    CLOSED = "closed"
    OVERFLOW = "overflow"


@dataclass(slots=True)
class SayOutcome:
    """What :meth:`SayAssembler.add` did with a chunk.

    Attributes:
        ready: chunks now ready to speak, in order (possibly several, once a gap fills).
        dropped: why the chunk was dropped, if it was.
    """

    ready: list[SayChunk] = field(default_factory=list)
    dropped: Dropped | None = None


@dataclass(slots=True)
class _Open:
    next_seq: int = 0
    waiting: dict[int, SayChunk] = field(default_factory=dict)


class SayAssembler:
    """Orders the chunks of each utterance and remembers which utterances are closed.

    Args:
        max_waiting: out-of-order chunks held per utterance before it is given up.
        remember: closed utterance ids remembered to drop their late chunks.
    """

    def __init__(self, max_waiting: int = 64, remember: int = 256) -> None:
        self._max_waiting = max_waiting
        self._remember = remember
        self._open: dict[str, _Open] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()

    def add(self, data: SayData, received_at: float) -> SayOutcome:
        """Accept one chunk; return the chunks now ready, in order."""
        utterance_id = data.utterance_id
        if utterance_id in self._closed:
            return SayOutcome(dropped=Dropped.CLOSED)
        state = self._open.setdefault(utterance_id, _Open())
        if data.seq < state.next_seq or data.seq in state.waiting:
            return SayOutcome(dropped=Dropped.DUPLICATE)
        chunk = SayChunk(
            utterance_id=utterance_id,
            seq=data.seq,
            text=data.text,
            final=data.final,
            allow_interruptions=data.allow_interruptions,
            received_at=received_at,
            agent_id=data.agent_id,
        )
        state.waiting[data.seq] = chunk
        if len(state.waiting) > self._max_waiting:
            self.close(utterance_id)
            return SayOutcome(dropped=Dropped.OVERFLOW)
        ready: list[SayChunk] = []
        while state.next_seq in state.waiting:
            ready.append(state.waiting.pop(state.next_seq))
            state.next_seq += 1
            if ready[-1].final:
                self.close(utterance_id)
                break
        return SayOutcome(ready=ready)

    def close(self, utterance_id: str) -> None:
        """Forget the utterance; its later chunks are dropped (finished or interrupted)."""
        self._open.pop(utterance_id, None)
        self._closed[utterance_id] = None
        self._closed.move_to_end(utterance_id)
        while len(self._closed) > self._remember:
            self._closed.popitem(last=False)

    def is_closed(self, utterance_id: str) -> bool:
        """Whether the utterance is finished or interrupted."""
        return utterance_id in self._closed
