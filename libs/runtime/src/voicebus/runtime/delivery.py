"""What a JetStream subscriber does when handling a message failed: retry later, or set it aside.

FastStream's NACK_ON_ERROR redelivers a failed message at once, and a consumer's
``max_deliver`` then drops it for good once the deliveries run out — in a
database outage of a few seconds. Every FastStream broker of the runtime kit
carries :class:`DeliveryMiddleware` instead, which settles a failed JetStream
delivery by what the failure is (:mod:`voicebus.runtime.failures`):

- the message is at fault (not the contract's shape, data the database refuses):
  it is stored in ``VB_DEAD_LETTERS``, then acknowledged;
- an outage (database, bus): negative ack with an exponentially growing, jittered
  delay (:mod:`voicebus.runtime.backoff`); event consumers have no delivery limit, so
  nothing is dropped however long the outage lasts;
- anything else: the same backoff; an event is set aside after
  :data:`GIVE_UP_AFTER` deliveries, a command when its consumer's ``max_deliver``
  runs out (through the max-deliveries advisory, :mod:`voicebus.runtime.advisories`).

If the dead letter cannot be stored, the original is redelivered later instead.
Core NATS messages (request/reply, control) pass through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from faststream import BaseMiddleware
from faststream._internal.basic_types import AsyncFuncAny
from faststream._internal.context.repository import ContextRepo
from faststream.exceptions import AckMessage, HandlerException, NackMessage
from faststream.message import StreamMessage
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from voicebus.contracts import streams
from voicebus.runtime import backoff
from voicebus.runtime.deadletters import Origin, dead_letter_msg, origin_of
from voicebus.runtime.failures import Failure, classify, dead_letter_reason, describe

__all__ = ["GIVE_UP_AFTER", "DeliveryMiddleware", "DeliveryPolicy"]

log = logging.getLogger(__name__)

GIVE_UP_AFTER: Final = 20
"""Deliveries of an event whose handler fails for no known reason before it is set aside
(about seven minutes of backoff): a defect must not hold a message forever, nor lose it."""


def _loud(delivered: int) -> bool:
    """Log the 1st, 2nd, 4th, 8th, ... failed delivery of a message: an outage of ten
    thousand messages must not write ten thousand lines a minute."""
    return delivered & (delivered - 1) == 0


class DeliveryPolicy:
    """How failed deliveries are settled for one service.

    Args:
        service: the service's name (dead letters go to ``vb.dlq.<service>.<reason>``).
        give_up_after: deliveries of an event with an unknown failure before it is set aside.
    """

    def __init__(self, service: str, *, give_up_after: int = GIVE_UP_AFTER) -> None:
        self.service = service
        self.give_up_after = give_up_after
        self._connection: Callable[[], Client] | None = None

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> DeliveryMiddleware:
        """The middleware for one message: the policy is what ``NatsBroker(middlewares=...)``
        takes."""
        return DeliveryMiddleware(msg, context=context, policy=self)

    def bind(self, connection: Callable[[], Client]) -> None:
        """Where dead letters are published: the broker's connection, once it exists."""
        self._connection = connection

    async def settle(self, raw: Msg, origin: Origin, exc: Exception) -> HandlerException:
        """The ack or delayed nak for a delivery whose handling raised ``exc``."""
        kind = classify(exc)
        fields = {"service": self.service, "consumer": origin.consumer,
                  "deliveries": origin.delivered, "error": type(exc).__name__}  # fmt: skip
        give_up = kind is Failure.DATA or (
            kind is Failure.UNKNOWN
            and origin.stream != streams.COMMANDS.name
            and origin.delivered >= self.give_up_after
        )
        if give_up and self._connection is not None:
            try:
                await dead_letter_msg(
                    self._connection().jetstream(),
                    raw,
                    service=self.service,
                    reason=dead_letter_reason(exc),
                    detail=describe(exc),
                )
                return AckMessage()
            except (NatsError, TimeoutError):
                log.warning("dead letter not stored; the message comes back", extra=fields)
        elif kind is Failure.UNKNOWN:
            if _loud(origin.delivered):
                log.error("message handler failed; retrying later", extra=fields, exc_info=exc)
        elif _loud(origin.delivered):
            log.warning("message handling failed on an outage; retrying later", extra=fields)
        return NackMessage(delay=backoff.delay_s(origin.delivered))


class DeliveryMiddleware(BaseMiddleware):
    """A broker middleware that settles failed JetStream deliveries by :class:`DeliveryPolicy`.

    FastStream makes one per message by calling the :class:`DeliveryPolicy`.
    """

    def __init__(self, msg: Any, /, *, context: ContextRepo, policy: DeliveryPolicy) -> None:
        super().__init__(msg, context=context)
        self._policy = policy

    async def consume_scope(self, call_next: AsyncFuncAny, msg: StreamMessage[Any]) -> Any:
        """Run the handler; turn its failure on a JetStream delivery into an ack or a nak."""
        try:
            return await call_next(msg)
        except HandlerException:
            raise
        except Exception as exc:
            raw = msg.raw_message
            origin = origin_of(raw.reply) if isinstance(raw, Msg) else None
            if origin is None:
                raise
            raise await self._policy.settle(raw, origin, exc) from exc
