"""Durable JetStream subscribers, declared the same way by every service.

STYLE.md: every JetStream subscriber states its ack policy and durable name
(``<service>-<purpose>``). FastStream's default for NATS drops a message whose
handler raised; these use NACK_ON_ERROR, and the broker's
:class:`~voicebus.runtime.delivery.DeliveryMiddleware` decides how: a message
at fault becomes a dead letter, any other failure comes back after an
exponentially growing, jittered delay.

- Event consumers have **no delivery limit** (``max_deliver=-1``): a database
  outage of any length delays events, it never drops them.
- Command consumers keep a small limit (a command is an order: retrying it for an
  hour is wrong); a command that runs out of deliveries is moved to
  ``VB_DEAD_LETTERS`` through JetStream's max-deliveries advisory
  (:mod:`voicebus.runtime.advisories`), never silently away.

Every consumer declared here is recorded, so that the service kit creates or
updates it to this definition at start (a consumer created by an older version
keeps its old limits otherwise) and relays its command advisories.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final
from weakref import WeakKeyDictionary

from faststream import AckPolicy
from faststream.nats import NatsBroker, PullSub
from faststream.nats.subscriber.usecases.basic import LogicSubscriber
from nats.js import JetStreamContext
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from voicebus.contracts import streams, subjects
from voicebus.runtime.provision import jstream

# Streams are provisioned once from the contracts; a subscriber must never
# declare one with other settings (``jstream`` sets ``declare=False``).
EVENTS_STREAM = jstream(streams.EVENTS)
COMMANDS_STREAM = jstream(streams.COMMANDS)

UNLIMITED: Final = -1
"""``max_deliver`` of event consumers: redelivered until handled or set aside."""
COMMAND_MAX_DELIVER: Final = 5

# One message per pull. With batch_size > 1, nats-py 2.16 raises the builtin
# TimeoutError from a pull whose deadline passed mid-fetch, which FastStream
# 0.7 does not expect (it suppresses nats.errors.TimeoutError only): its
# supervisor logs a traceback and restarts the consumer task. Bulk consumers
# that need batches (audit under load) pull with nats-py directly.
_PULL = PullSub(batch_size=1, timeout=1.0)


@dataclass(frozen=True, slots=True)
class Declared:
    """A durable consumer a service declared."""

    stream: str
    config: ConsumerConfig


_DECLARED: WeakKeyDictionary[NatsBroker, list[Declared]] = WeakKeyDictionary()


def declared(broker: NatsBroker) -> list[Declared]:
    """The durable consumers declared on ``broker`` through this module."""
    return list(_DECLARED.get(broker, []))


def command_durables(broker: NatsBroker) -> list[str]:
    """Durable names of the ``VB_COMMANDS`` consumers declared on ``broker``."""
    return [
        str(d.config.durable_name) for d in declared(broker) if d.stream == streams.COMMANDS.name
    ]


def _consumer_config(
    durable: str, subject: str, *, deliver_new: bool, ack_wait_s: float, max_deliver: int
) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable,
        deliver_policy=DeliverPolicy.NEW if deliver_new else DeliverPolicy.ALL,
        ack_policy=JsAckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
        filter_subject=subject,
    )


def _record(broker: NatsBroker, stream: str, config: ConsumerConfig) -> None:
    _DECLARED.setdefault(broker, []).append(Declared(stream, config))


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create the durable consumer ``config`` names, or update it to ``config``.

    JetStream updates an existing durable in place when the change is allowed
    (delivery limit, ack wait, pending limits); the deliver policy of an existing
    consumer is kept, since it cannot change.
    """
    try:
        info = await js.consumer_info(stream, str(config.durable_name))
    except NotFoundError:
        pass
    else:
        current = info.config
        config = replace(
            config,
            deliver_policy=current.deliver_policy,
            opt_start_seq=current.opt_start_seq,
            opt_start_time=current.opt_start_time,
        )
    await js.add_consumer(stream, config=config)


async def ensure_declared(js: JetStreamContext, broker: NatsBroker) -> None:
    """Create or update every consumer declared on ``broker`` (see :func:`ensure_consumer`)."""
    for item in declared(broker):
        await ensure_consumer(js, item.stream, item.config)


def event_subscriber(
    broker: NatsBroker,
    *,
    durable: str,
    event_type: str | None = None,
    deliver_new: bool = True,
    ack_wait_s: float = 30.0,
    max_deliver: int = UNLIMITED,
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
        max_deliver: deliveries before JetStream gives up; unlimited by default
            (failures are settled by the broker's delivery middleware).
        description: for the AsyncAPI document.

    Returns:
        FastStream's subscriber decorator.
    """
    subject = subjects.evt_filter(event_type=event_type)
    config = _consumer_config(
        durable, subject, deliver_new=deliver_new, ack_wait_s=ack_wait_s, max_deliver=max_deliver
    )
    _record(broker, streams.EVENTS.name, config)
    return broker.subscriber(
        subject,
        stream=EVENTS_STREAM,
        durable=durable,
        config=config,
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
    max_deliver: int = COMMAND_MAX_DELIVER,
    description: str | None = None,
) -> LogicSubscriber[Any]:
    """A durable pull consumer on the work queue ``VB_COMMANDS``: one owner per command.

    A command that fails ``max_deliver`` times goes to ``VB_DEAD_LETTERS`` (reason
    ``max_deliveries``) through the max-deliveries advisory, which the service kit
    relays for every command consumer declared here.
    """
    subject = subjects.cmd(domain, verb)
    config = _consumer_config(
        durable, subject, deliver_new=False, ack_wait_s=ack_wait_s, max_deliver=max_deliver
    )
    _record(broker, streams.COMMANDS.name, config)
    return broker.subscriber(
        subject,
        stream=COMMANDS_STREAM,
        durable=durable,
        config=config,
        pull_sub=_PULL,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        description=description,
    )
