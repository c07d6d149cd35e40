"""Who may publish and subscribe what on the bus: one NATS user per service, one per tenant.

The table is the bus's access contract. ``voicebus nats-config`` turns it into a
``nats-server`` accounts block; the dev stack can run with it; docs/security.md says
what it enforces and what it does not.

- Audio (``vb.audio``) is heard only by media (out audio: an operator's microphone while
  they hold the call, transcribed), the recorder and the edge (an operator listening to a
  live call of their tenant) and sent only by the gateway (caller side), media and the
  edge (agent side: an operator who took the call over).
- A service answers only its own ``vb.rpc.<service>.>`` and asks only the services it
  needs; the edge's account lookup (credentials in clear) is asked by the gateway only.
- Commands (``vb.cmd``) and per-call control (``vb.ctl``) come only from the services
  that give orders.
- Keys pressed while a call's keypad is masked (``vb.keys``) go from the gateway to the
  orchestrator only.
- Each user reads replies on its own inbox prefix (``_INBOX_<service>``,
  ``_INBOX_tenant_<tenant>``), so nobody reads another's replies; answering a request
  needs no publish grant (``allow_responses``).
- A tenant's downstream user reads only ``vb.evt.<tenant>.>``, live or through durable
  consumers it creates on ``VB_EVENTS`` with a filter inside its tenant and a name it
  was given.
- JetStream is granted per service from :data:`JETSTREAM` (what its code does, as data):
  it creates and updates only the streams and KV buckets it uses (``STREAM.CREATE``,
  ``STREAM.UPDATE``, ``STREAM.INFO`` on those names, and it provisions only those);
  creates, reads and acks only its own durable consumers (by stream and durable name);
  reads stored messages, purges, or deletes single messages only of the streams whose
  entry says so; and reads and writes only the KV buckets it uses (``$KV.<bucket>.>``).
  No service deletes a stream or a consumer or asks for account info: the operator does.

Not narrowed further: an ordered (ephemeral) consumer gets a random name from the server,
so a service that reads a stream through one (the orchestrator's per-call reader of
``VB_EVENTS``, KV key listings and watches) may create any ephemeral consumer on that
stream (``CONSUMER.CREATE.<stream>``, any filter) and answers its flow control
(``$JS.FC.<stream>.>``); a durable of its own may be created with any filter of its
stream; a purge or a stored-message read names any subject of its stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from voicebus.contracts import subjects
from voicebus.contracts.streams import (
    ADVISORIES,
    CALL_OWNERS,
    CALL_SLOTS,
    COMMANDS,
    DEAD_LETTERS,
    EVENTS,
    RATE_LIMITS,
    SESSIONS,
    STREAM_CLAIMS,
    WEBHOOK_NONCES,
)

SERVICES: Final = ("gateway", "media", "orchestrator", "campaigns", "recorder", "audit", "edge")
"""Every service with a NATS user of its own."""

OPERATOR: Final = "operator"
"""The user of the operator's tools (CLI, tests): everything, as before accounts."""


def inbox_prefix(service: str) -> str:
    """``_INBOX_<service>``: where a service reads its replies (a token of its own)."""
    return f"_INBOX_{subjects.token(service, 'service')}"


def tenant_inbox_prefix(tenant_id: str) -> str:
    """``_INBOX_tenant_<tenant>``: where a tenant's downstream user reads its replies."""
    return f"_INBOX_tenant_{subjects.token(tenant_id, 'tenant id')}"


def _rpc(service: str) -> str:
    return f"{subjects.ROOT}.rpc.{service}.>"


@dataclass(frozen=True, slots=True)
class Grant:
    """One user's allow-lists (everything else is denied).

    Attributes:
        publish: subjects it may publish to (``*`` and ``>`` as in NATS).
        subscribe: subjects it may subscribe to.
        responses: whether it may answer requests it received (the reply subject only).
    """

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    responses: bool = True


_AUDIO_IN: Final = subjects.AUDIO_IN_ALL
_AUDIO_OUT: Final = subjects.AUDIO_OUT_ALL
_PLAYED: Final = subjects.AUDIO_PLAYED_ALL
_CTL: Final = f"{subjects.ROOT}.ctl.>"
_KEYS: Final = subjects.KEYS_ALL
_EVENTS: Final = subjects.EVENTS_ALL
_COMMANDS: Final = subjects.COMMANDS_ALL
_ADVISORIES: Final = "$JS.EVENT.ADVISORY.>"

_OWN: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    # service: (publishes beyond events, subscribes beyond its own RPC)
    "gateway": (
        (
            _AUDIO_IN,
            _PLAYED,
            _KEYS,  # masked keypad: the real keys, for the orchestrator only
            _rpc("orchestrator"),
            f"{subjects.ROOT}.rpc.edge.accounts.>",
        ),
        (_AUDIO_OUT, _CTL),
    ),
    "media": (
        (_AUDIO_OUT, _CTL, _rpc("orchestrator")),
        # Out audio: while an operator holds a call, media transcribes their microphone.
        (_AUDIO_IN, _AUDIO_OUT, _PLAYED, _CTL),
    ),
    "orchestrator": ((_CTL, _COMMANDS, _rpc("audit"), _rpc("gateway")), (_KEYS,)),
    "campaigns": ((_CTL, _COMMANDS, _rpc("orchestrator"), _rpc("gateway")), ()),  # voicemail drop
    "recorder": ((), (_AUDIO_IN, _AUDIO_OUT)),
    "audit": ((), ()),
    "edge": (
        (
            _CTL,
            _COMMANDS,
            _AUDIO_OUT,  # live supervision: the operator's microphone after a take-over
            *(_rpc(s) for s in ("orchestrator", "audit", "recorder", "campaigns", "gateway")),
        ),
        (_AUDIO_IN, _AUDIO_OUT),  # live supervision: an operator listens
    ),
}


@dataclass(frozen=True, slots=True)
class JetStreamUse:
    """What one service does with JetStream: the source of its JetStream API grant.

    Attributes:
        streams: streams it provisions at start (created, or updated to the contract).
        buckets: KV buckets it provisions, reads and writes.
        durables: ``(stream, durable)``: consumers it creates or updates, pulls and acks.
        ordered: streams it reads through ordered (ephemeral) consumers.
        watches: KV buckets whose keys it lists or watches (an ordered consumer each).
        reads: streams whose stored messages it gets (by sequence, or last by subject).
        deletes: streams it deletes single messages from.
        purges: streams it purges (by subject).
    """

    streams: tuple[str, ...]
    buckets: tuple[str, ...] = ()
    durables: tuple[tuple[str, str], ...] = ()
    ordered: tuple[str, ...] = ()
    watches: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()
    purges: tuple[str, ...] = ()


# Every service publishes events and may set a message aside as a dead letter, so each
# provisions both streams: publishing needs them whichever service starts first.
_PUBLISHED: Final = (EVENTS.name, DEAD_LETTERS.name)


def _claims(service: str) -> tuple[str, str]:
    """The durable of :class:`voicebus.runtime.claims.CallClaims` (one instance per call)."""
    return (EVENTS.name, f"{service}-call-claims")


JETSTREAM: Final[dict[str, JetStreamUse]] = {
    "gateway": JetStreamUse(
        # Commands it owns, and the advisories of its command consumers it relays.
        streams=(*_PUBLISHED, COMMANDS.name, ADVISORIES.name),
        buckets=(
            CALL_OWNERS.bucket,
            CALL_SLOTS.bucket,
            STREAM_CLAIMS.bucket,
            WEBHOOK_NONCES.bucket,
        ),
        durables=((COMMANDS.name, "gateway-originate"), (ADVISORIES.name, "gateway-dead-letters")),
        # A call's stored call.started / call.ended; a command that ran out of deliveries.
        reads=(EVENTS.name, COMMANDS.name),
        deletes=(COMMANDS.name,),  # the relayed command leaves the work queue
    ),
    "media": JetStreamUse(
        streams=_PUBLISHED,
        buckets=(CALL_OWNERS.bucket,),
        durables=(_claims("media"),),
        watches=(CALL_OWNERS.bucket,),  # takeover scan
        reads=(EVENTS.name,),
    ),
    "orchestrator": JetStreamUse(
        streams=(*_PUBLISHED, COMMANDS.name),
        buckets=(SESSIONS.bucket, CALL_OWNERS.bucket),
        durables=(_claims("orchestrator"), (EVENTS.name, "orchestrator-post-call")),
        ordered=(EVENTS.name,),  # each conversation reads its call's events in order
        watches=(CALL_OWNERS.bucket,),  # takeover and lost-gateway scan
        reads=(EVENTS.name,),
    ),
    "campaigns": JetStreamUse(
        streams=(*_PUBLISHED, COMMANDS.name),
        durables=((EVENTS.name, "campaigns-call-events"), (EVENTS.name, "campaigns-dnc-requests")),
    ),
    "recorder": JetStreamUse(
        streams=_PUBLISHED,
        buckets=(CALL_OWNERS.bucket,),
        durables=(_claims("recorder"),),
        watches=(CALL_OWNERS.bucket,),  # takeover scan
        reads=(EVENTS.name,),
    ),
    "audit": JetStreamUse(
        streams=_PUBLISHED,
        durables=((EVENTS.name, "audit-call-events"),),
        purges=(EVENTS.name,),  # erasure: a caller's calls leave the stream too
    ),
    "edge": JetStreamUse(
        streams=(*_PUBLISHED, COMMANDS.name),
        buckets=(CALL_SLOTS.bucket, RATE_LIMITS.bucket),
        durables=((EVENTS.name, "edge-event-ingest"),),
        watches=(CALL_SLOTS.bucket,),  # a tenant's held call slots
    ),
}
"""Per service, the streams, consumers and KV buckets its code uses (and nothing else)."""

_API: Final = "$JS.API"


def kv_stream(bucket: str) -> str:
    """The stream that backs a KV bucket (``KV_<bucket>``)."""
    return f"KV_{bucket}"


def _stream_api(use: JetStreamUse) -> list[str]:
    out: list[str] = []
    for stream in (*use.streams, *(kv_stream(b) for b in use.buckets)):
        out += [f"{_API}.STREAM.{verb}.{stream}" for verb in ("CREATE", "UPDATE", "INFO")]
    for stream in (*use.reads, *(kv_stream(b) for b in use.buckets)):
        # nats-py gets a stored message with MSG.GET, or DIRECT.GET when the stream allows it.
        out += [
            f"{_API}.STREAM.MSG.GET.{stream}",
            f"{_API}.DIRECT.GET.{stream}",
            f"{_API}.DIRECT.GET.{stream}.>",
        ]
    out += [f"{_API}.STREAM.MSG.DELETE.{stream}" for stream in use.deletes]
    out += [f"{_API}.STREAM.PURGE.{stream}" for stream in use.purges]
    return out


def _consumer_api(use: JetStreamUse) -> list[str]:
    out: list[str] = []
    for stream, durable in use.durables:
        out += [
            # nats-py names the subject by the config: durable only, or name (+ filter).
            f"{_API}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
            f"{_API}.CONSUMER.CREATE.{stream}.{durable}",
            f"{_API}.CONSUMER.CREATE.{stream}.{durable}.>",
            f"{_API}.CONSUMER.INFO.{stream}.{durable}",
            f"{_API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        ]
    for stream in (*use.ordered, *(kv_stream(b) for b in use.watches)):
        # An ordered consumer is ephemeral, named by the server: the stream is the limit.
        out += [f"{_API}.CONSUMER.CREATE.{stream}", f"$JS.FC.{stream}.>"]
    # nats-py's KV watch asks its consumer's info (how many keys are pending).
    out += [f"{_API}.CONSUMER.INFO.{kv_stream(b)}.*" for b in use.watches]
    return out


def jetstream_subjects(service: str) -> tuple[str, ...]:
    """The JetStream subjects a service may publish to, from its :data:`JETSTREAM` entry.

    The API requests of what it uses (see :class:`JetStreamUse`) and ``$KV.<bucket>.>``
    of its buckets; in :data:`JETSTREAM`'s order, without duplicates, so the generated
    server configuration is stable.
    """
    use = JETSTREAM[service]
    found = [*_stream_api(use), *_consumer_api(use), *(f"$KV.{b}.>" for b in use.buckets)]
    return tuple(dict.fromkeys(found))


def service_grant(service: str) -> Grant:
    """What one service's user may do.

    Every service publishes and hears events and publishes dead letters; beyond that,
    only what :data:`_OWN` lists for it, and the JetStream API of what
    :data:`JETSTREAM` lists for it (:func:`jetstream_subjects`).
    """
    if service not in _OWN:
        raise ValueError(f"no such service: {service!r}")
    publishes, subscribes = _OWN[service]
    common_pub = (_EVENTS, f"{subjects.ROOT}.dlq.{service}.>", *jetstream_subjects(service))
    common_sub = (_rpc(service), f"{inbox_prefix(service)}.>", _EVENTS, _ADVISORIES)
    return Grant(publish=(*common_pub, *publishes), subscribe=(*common_sub, *subscribes))


def tenant_grant(tenant_id: str, consumers: Sequence[str] = ()) -> Grant:
    """What a tenant's downstream user may do: read its own events, nothing else.

    Args:
        tenant_id: the tenant.
        consumers: suffixes of the durable consumers on ``VB_EVENTS`` it may create and
            read, each named ``tenant-<tenant>-<suffix>`` (``tenant-<tenant>`` alone when
            none). A consumer's name is the only thing that keeps one user from pulling
            another's consumer, so names are granted, never guessed, and always carry the
            tenant (a service's durables are ``<service>-<purpose>``).
    """
    own = subjects.evt_filter(tenant_id)
    names = [tenant_consumer(tenant_id, c) for c in consumers] or [tenant_consumer(tenant_id)]
    stream = EVENTS.name
    publish: list[str] = []
    for name in names:
        publish += [
            f"$JS.API.CONSUMER.CREATE.{stream}.{name}.{own}",
            f"$JS.API.CONSUMER.INFO.{stream}.{name}",
            f"$JS.API.CONSUMER.DELETE.{stream}.{name}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}",
            f"$JS.ACK.{stream}.{name}.>",
        ]
    return Grant(
        publish=tuple(publish),
        subscribe=(own, f"{tenant_inbox_prefix(tenant_id)}.>"),
        responses=False,
    )


def tenant_consumer(tenant_id: str, suffix: str | None = None) -> str:
    """``tenant-<tenant>[-<suffix>]``: a durable consumer name a tenant's user may use."""
    base = f"tenant-{subjects.token(tenant_id, 'tenant id')}"
    return base if suffix is None else f"{base}-{subjects.token(suffix, 'consumer name')}"


def operator_grant() -> Grant:
    """The operator's tools: everything."""
    return Grant(publish=(">",), subscribe=(">",))
