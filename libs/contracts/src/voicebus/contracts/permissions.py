"""Who may publish and subscribe what on the bus: one NATS user per service, one per tenant.

The table is the bus's access contract. ``voicebus nats-config`` turns it into a
``nats-server`` accounts block; the dev stack can run with it; docs/security.md says
what it enforces and what it does not.

- Audio (``vb.audio``) is heard only by media, the recorder and the edge (an operator
  listening to a live call of their tenant) and sent only by the gateway (caller side),
  media and the edge (agent side: an operator who took the call over).
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

Not enforced here: every service keeps the JetStream API (``$JS.API.>``), which can read
any stream's messages through a consumer; separate accounts per service with exported
streams are the next step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from voicebus.contracts import subjects
from voicebus.contracts.streams import EVENTS

SERVICES: Final = ("gateway", "media", "orchestrator", "campaigns", "recorder", "audit", "edge")
"""Every service with a NATS user of its own."""

OPERATOR: Final = "operator"
"""The user of the operator's tools (CLI, tests): everything, as before accounts."""

_JETSTREAM: Final = ("$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>")
"""What a service needs to use streams, consumers and KV buckets."""


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
    "media": ((_AUDIO_OUT, _CTL, _rpc("orchestrator")), (_AUDIO_IN, _PLAYED, _CTL)),
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


def service_grant(service: str) -> Grant:
    """What one service's user may do.

    Every service publishes and hears events, publishes dead letters and uses
    JetStream; beyond that, only what :data:`_OWN` lists for it.
    """
    if service not in _OWN:
        raise ValueError(f"no such service: {service!r}")
    publishes, subscribes = _OWN[service]
    common_pub = (_EVENTS, f"{subjects.ROOT}.dlq.{service}.>", *_JETSTREAM)
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
