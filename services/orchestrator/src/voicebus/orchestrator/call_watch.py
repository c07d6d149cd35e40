"""Conversation hygiene: reprompt a silent caller, hang up politely, end at the time limit.

The idle clock starts when the agent's last utterance has played and stops as
soon as the caller speaks or presses a key. Each expiry is a ``call.idle``
event: a reprompt, or (after the agent's maximum) the idle goodbye and a
hang-up with reason ``idle``. The call's time limit counts from the session's
``started_at``, so an instance that takes the call over keeps the same deadline;
at the limit the agent says its closing line and hangs up with reason
``max_duration``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from voicebus.contracts.events import CallIdle, CallIdleData, EndReason, utc_now

if TYPE_CHECKING:
    from voicebus.orchestrator.conversation import Conversation

log = logging.getLogger(__name__)


class CallWatch:
    """The idle clock and the time limit of one conversation."""

    def __init__(self, conversation: Conversation) -> None:
        self._c = conversation
        self._idle: asyncio.Task[None] | None = None
        self._limit: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the time limit (if the agent has one)."""
        hygiene = self._c.agent.spec.hygiene
        if hygiene.max_duration_s is not None and self._limit is None:
            elapsed = (utc_now() - self._c.session.started_at).total_seconds()
            self._limit = asyncio.create_task(self._at_limit(hygiene.max_duration_s - elapsed))

    def stop(self) -> None:
        """Stop both clocks (the call is ending or closing)."""
        for task in (self._idle, self._limit):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._idle = self._limit = None

    def agent_busy(self) -> None:
        """The agent is answering: no idle clock."""
        self._stop_idle()

    def caller_active(self) -> None:
        """The caller spoke or pressed a key: reprompts start over."""
        self._stop_idle()
        self._c.session.reprompts = 0

    def agent_done(self) -> None:
        """The agent's last utterance played: the idle clock starts."""
        timeout = self._c.agent.spec.hygiene.idle_timeout_s
        if timeout is None or self._c.session.ending:
            return
        self._stop_idle()
        self._idle = asyncio.create_task(self._on_idle(timeout))

    def _stop_idle(self) -> None:
        if self._idle is not None and self._idle is not asyncio.current_task():
            self._idle.cancel()
        self._idle = None

    async def _on_idle(self, timeout: float) -> None:
        await asyncio.sleep(timeout)
        c = self._c
        hygiene = c.agent.spec.hygiene
        c.session.reprompts += 1
        hang_up = c.session.reprompts > hygiene.idle_max_reprompts
        await c.outbox.publish(
            CallIdle(tenant_id=c.session.tenant_id, call_id=c.call_id, source=c.outbox.source,
                     data=CallIdleData(silence_s=timeout, reprompts=c.session.reprompts,
                                       action="hangup" if hang_up else "reprompt"))
        )  # fmt: skip
        self._idle = None
        if hang_up:
            log.info("caller idle: hanging up", extra={"call_id": c.call_id})
            await c.end_after(c.utterance(), hygiene.idle_goodbye, EndReason.IDLE)
        else:
            await c.say_alone(hygiene.idle_reprompt)
        await c.save()

    async def _at_limit(self, delay_s: float) -> None:
        await asyncio.sleep(max(delay_s, 0.0))
        c = self._c
        self._limit = None
        log.info("call time limit reached", extra={"call_id": c.call_id})
        await c.end_after(c.utterance(), c.agent.spec.hygiene.max_duration_line,
                          EndReason.MAX_DURATION)  # fmt: skip
        await c.save()
