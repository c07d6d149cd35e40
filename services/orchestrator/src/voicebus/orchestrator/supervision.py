"""Live supervision of one conversation: whisper, take over, the human's lines, hand back.

The edge publishes the operator's actions as the call's events, so they arrive here in
order with the caller's transcripts and are replayed to an instance that takes the call
over. While a person holds the call (``session.supervisor``) the agent says nothing: a
caller's line joins the history unanswered, and the human agent's lines join it as the
assistant's (``name="human_agent"``), so that after the hand-back the LLM continues
from everything the caller heard.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from voicebus.contracts.commands import Clear, ClearData
from voicebus.contracts.events import (
    SupervisionEnded,
    SupervisionHandedBack,
    SupervisionHumanSaid,
    SupervisionTakenOver,
    SupervisionWhispered,
)
from voicebus.orchestrator.session import StoredMessage

if TYPE_CHECKING:
    from voicebus.orchestrator.conversation import Conversation

log = logging.getLogger(__name__)

HUMAN_AGENT: Final = "human_agent"
"""The ``name`` of the human agent's lines in the history."""
WHISPER_PREFIX: Final = "Supervisor guidance for your next replies (never say it aloud): "

SupervisionEvent = (
    SupervisionWhispered
    | SupervisionTakenOver
    | SupervisionHumanSaid
    | SupervisionHandedBack
    | SupervisionEnded
)


def whisper_message(note: str) -> StoredMessage:
    """The history entry of a whispered note: system guidance, not a line of the call."""
    return StoredMessage(role="system", content=WHISPER_PREFIX + note)


def human_line(text: str) -> StoredMessage:
    """The history entry of a line the human agent said to the caller."""
    return StoredMessage(role="assistant", content=text, name=HUMAN_AGENT)


async def supervise(c: Conversation, event: SupervisionEvent) -> None:
    """Apply one supervision event to the conversation, then save it."""
    match event:
        case SupervisionWhispered():
            c.session.history.append(whisper_message(event.data.note))
            log.info("whisper received", extra={"call_id": c.call_id,
                                                "operator": event.data.operator})  # fmt: skip
        case SupervisionTakenOver():
            await take_over(c, event.data.operator)
        case SupervisionHumanSaid():
            c.session.history.append(human_line(event.data.text))
        case SupervisionHandedBack() | SupervisionEnded():
            # Only the person holding the call gives it back: another operator who was
            # only listening (or whispering) closing their page leaves it held.
            if c.session.supervisor is None or event.data.operator != c.session.supervisor:
                return
            c.session.supervisor = None
            c.watch.start()
            log.info("call handed back", extra={"call_id": c.call_id,
                                                "operator": event.data.operator})  # fmt: skip
    await c.save()


async def take_over(c: Conversation, operator: str) -> None:
    """Stop the agent: cancel its reply, flush its audio not yet played, stop its clocks."""
    c.session.supervisor = operator
    c.watch.stop()
    await c.stop_agent()
    await c.control(
        Clear(tenant_id=c.session.tenant_id, call_id=c.call_id, source=c.outbox.source,
              data=ClearData(utterance_id=c.last_utterance, reason="cancelled"))
    )  # fmt: skip
    log.info("call taken over", extra={"call_id": c.call_id, "operator": operator})
