"""Keypad input of one call: keys into inputs, inputs into the flow or the conversation.

Every ``dtmf.received`` is collected, whatever the agent is doing (so nothing is
lost), into the session's ``digits`` (saved: a successor keeps a half-typed PIN).
An input ends at the terminator, the maximum length or a pause (the rules of
the current collect-digits node, or the agent-wide ones). In a collect-digits
node it fills the node's variable; elsewhere it is the caller's next input,
``(keypad) 1234``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from voicebus.orchestrator.keypad import KeypadRules, push
from voicebus.orchestrator.speaker import Utterance
from voicebus.orchestrator.turn import Step
from voicebus.runtime.logs import pii

if TYPE_CHECKING:
    from voicebus.orchestrator.conversation import Conversation

log = logging.getLogger(__name__)


class KeypadInput:
    """The keys of one conversation, and the inter-digit timer."""

    def __init__(self, conversation: Conversation, defaults: KeypadRules) -> None:
        self._c = conversation
        self._defaults = defaults
        self.timer: asyncio.Task[None] | None = None

    def rules(self) -> KeypadRules:
        """The current collect-digits node's rules, or the agent-wide ones."""
        node = self._c.flow.node()
        if node is not None and node.collect_digits is not None:
            spec = node.collect_digits
            return KeypadRules(spec.max_length, spec.terminator, spec.inter_digit_timeout_s)
        return self._defaults

    async def keys(self, keys: str) -> None:
        """Keys the caller pressed."""
        c = self._c
        if c.session.ending:
            return
        c.watch.caller_active()
        buffer, done = push(c.session.digits, keys, self.rules())
        c.session.digits = buffer
        log.info("keys received", extra={"call_id": c.call_id, **pii(keys=keys)})
        for digits in done:
            await self._done(digits)
        if c.session.digits:
            self.arm()
        await c.save()

    def arm(self) -> None:
        """(Re)start the pause that completes the buffered input."""
        self.stop()
        self.timer = asyncio.create_task(self._pause(self.rules().timeout_s))

    def stop(self) -> None:
        """Stop the timer."""
        if self.timer is not None and self.timer is not asyncio.current_task():
            self.timer.cancel()
        self.timer = None

    async def _pause(self, timeout_s: float) -> None:
        await asyncio.sleep(timeout_s)
        c = self._c
        digits, c.session.digits = c.session.digits, ""
        self.timer = None
        if digits:
            await self._done(digits)

    async def _done(self, digits: str) -> None:
        c = self._c
        node = c.flow.node()
        if node is not None and node.collect_digits is not None:

            async def collect(utterance: Utterance) -> Step | None:
                return await c.flow.digits(digits, utterance)

            await c.start_turn(time.monotonic(), collect)
        else:
            await c.answer(f"(keypad) {digits}", time.monotonic())
