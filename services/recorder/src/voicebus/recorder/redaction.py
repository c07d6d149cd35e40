"""Sensitive keypad input kept out of a recording: the caller is silenced while the call
is in a node that collects secret digits (a PIN, a card number).

The orchestrator marks such a node's ``flow.node_entered`` with ``sensitive_input``;
the span lasts until the next ``flow.node_entered`` (or the call's end). Keys pressed
are tones in the caller's audio, and a caller may speak the digits instead, so the
caller's channel is silent over the whole span. The agent's channel is kept: while
the node collects, the agent only says its prompt, and the digits are not in the
agent's hands until the node is left (outside the span).

Where the span lies: the event's ``time`` is the orchestrator's clock when the node
was entered, and caller frames are stamped in ms since the media stream opened,
which is when the gateway stamped ``call.started``. So the span starts at
``node_entered.time - call_started.time`` on the recording's timeline, widened by a
margin each way for host clocks that disagree a little. The mixer applies a span when
audio leaves its reorder window, so an event that reaches the recorder after the audio
of its time still silences that audio; only an event later than the whole window
finds part of its span written, which is counted.

Takeover: the instance that continues a recording reads the call's last
``flow.node_entered`` back from ``VB_EVENTS``, so a span that began before it took
over goes on. Events are applied in the order of their ``time``: an older one read
back after a newer one arrived live changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from nats.aio.msg import Msg
from prometheus_client import Counter
from pydantic import ValidationError

from voicebus.contracts.events import FlowNodeEntered
from voicebus.recorder.mixer import Channel
from voicebus.recorder.recording import Recording

log = logging.getLogger(__name__)

EVENTS = Counter(
    "voicebus_recorder_redaction_events",
    "flow.node_entered events applied to recordings, by what they did: opened (the caller "
    "is silenced from the node's entry), opened_late (part of the span was already "
    "written: the event came later than the reorder window), other (a node without "
    "sensitive input: any open span ends), stale (older than one already applied).",
    ["result"],
)

_MS = timedelta(milliseconds=1)


def timeline_ms(started_at: datetime, at: datetime) -> int:
    """Where wall-clock ``at`` falls on the call's recording timeline, in ms."""
    return (at - started_at) // _MS


class KeypadRedaction:
    """Silences a recording's caller channel over sensitive keypad input.

    Args:
        recording: the call's recording.
        started_at: ``call.started``'s time: when the recording's timeline began.
        margin_ms: how far each span is widened on both sides.
    """

    def __init__(self, recording: Recording, started_at: datetime, margin_ms: int) -> None:
        self._recording = recording
        self._started_at = started_at
        self._margin_ms = margin_ms
        self._last: datetime | None = None

    def apply(self, event: FlowNodeEntered) -> None:
        """Open a span at a sensitive node's entry, close it at any other node's."""
        if self._last is not None and event.time <= self._last:
            EVENTS.labels("stale").inc()  # older than (or the same as) what is applied
            return
        self._last = event.time
        at_ms = timeline_ms(self._started_at, event.time)
        if not event.data.sensitive_input:
            self._recording.silence_until(Channel.CALLER, at_ms + self._margin_ms)
            EVENTS.labels("other").inc()
            return
        written = self._recording.silence_from(Channel.CALLER, at_ms - self._margin_ms)
        EVENTS.labels("opened_late" if written else "opened").inc()
        if written:
            log.warning(
                "sensitive span partly written before its event came",
                extra={"call_id": event.call_id,
                       "written_s": written / self._recording.sample_rate},
            )  # fmt: skip

    async def on_message(self, msg: Msg) -> None:
        """A ``flow.node_entered`` of the call, from the bus."""
        try:
            event = FlowNodeEntered.model_validate_json(msg.data)
        except ValidationError:
            log.warning("unreadable flow.node_entered")
            return
        self.apply(event)
