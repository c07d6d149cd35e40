"""Durable JetStream subscribers, declared the same way by every service.

STYLE.md: every JetStream subscriber states its ack policy and durable name
(``<service>-<purpose>``). FastStream's default for NATS drops a message whose
handler raised, so these use NACK_ON_ERROR: a failing handler gets the message
again (up to ``max_deliver`` times), and other subscribers never notice.
"""

from __future__ import annotations

from typing import Any

from faststream import AckPolicy
from faststream.nats import NatsBroker, PullSub
from faststream.nats.subscriber.usecases.basic import LogicSubscriber
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy

from voicebus.contracts import streams, subjects
from voicebus.runtime.provision import jstream

# Streams are provisioned once from the contracts; a subscriber must never
# declare one with other settings (``jstream`` sets ``declare=False``).
EVENTS_STREAM = jstream(streams.EVENTS)
COMMANDS_STREAM = jstream(streams.COMMANDS)

# One message per pull. With batch_size > 1, nats-py 2.16 raises the builtin
# TimeoutError from a pull whose deadline passed mid-fetch, which FastStream
# 0.7 does not expect (it suppresses nats.errors.TimeoutError only): its
# supervisor logs a traceback and restarts the consumer task. Bulk consumers
# that need batches (audit under load) pull with nats-py directly.
_PULL = PullSub(batch_size=1, timeout=1.0)


def _consumer_config(
    durable: str, *, deliver_new: bool, ack_wait_s: float, max_deliver: int
) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable,
        deliver_policy=DeliverPolicy.NEW if deliver_new else DeliverPolicy.ALL,
        ack_policy=JsAckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
    )


def event_subscriber(
    broker: NatsBroker,
    *,
    durable: str,
    event_type: str | None = None,
    deliver_new: bool = True,
    ack_wait_s: float = 30.0,
    max_deliver: int = 10,
    description: str | None = None,
) -> LogicSubscriber[Any]:
    """A durable pull consumer on ``VB_EVENTS``.

    Instances of one service sharing ``durable`` split the messages between
    them, so each event is handled by one instance (this is how a service
    claims a call).

    Args:
        broker: the service's broker.
        durable: ``<service>-<purpose>``.
        event_type: only this unversioned type (``call.started``); all when None.
        deliver_new: a new consumer starts at "now" (claims) rather than
            replaying history (audit replays: False).
        ack_wait_s: redelivery after this long without an ack.
        max_deliver: give up on a message after this many deliveries.
        description: for the AsyncAPI document.

    Returns:
        FastStream's subscriber decorator.
    """
    return broker.subscriber(
        subjects.evt_filter(event_type=event_type),
        stream=EVENTS_STREAM,
        durable=durable,
        config=_consumer_config(
            durable, deliver_new=deliver_new, ack_wait_s=ack_wait_s, max_deliver=max_deliver
        ),
        pull_sub=_PULL,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        description=description,
    )


def command_subscriber(
    broker: NatsBroker,
    *,
    durable: str,
    domain: str,
    verb: str,
    ack_wait_s: float = 30.0,
    max_deliver: int = 5,
    description: str | None = None,
) -> LogicSubscriber[Any]:
    """A durable pull consumer on the work queue ``VB_COMMANDS``: one owner per command."""
    return broker.subscriber(
        subjects.cmd(domain, verb),
        stream=COMMANDS_STREAM,
        durable=durable,
        config=_consumer_config(
            durable, deliver_new=False, ack_wait_s=ack_wait_s, max_deliver=max_deliver
        ),
        pull_sub=_PULL,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        description=description,
    )
