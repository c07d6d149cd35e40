"""Which subscriptions an event goes to. Pure.

An event belongs to the tenant named in its subject (``vb.evt.<tenant>.<call>.<type>``),
the subject NATS permissions confine each publisher and subscriber to; an event whose
body names another tenant is refused, so one tenant's events can never reach another
tenant's subscription.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from voicebus.contracts.subjects import strip_version
from voicebus.edge.webhooks.filters import matches
from voicebus.edge.webhooks.store import Outgoing, Webhook

_MAX_ID: Final = 64
_MAX_TYPE: Final = 128


class NotAnEventError(ValueError):
    """The message is not an event envelope of its subject."""


@dataclass(frozen=True, slots=True)
class EventHead:
    """The envelope fields routing needs, read from any event type (known or not).

    Attributes:
        type: the versioned type (``call.started.v1``).
    """

    id: str
    type: str
    tenant_id: str
    call_id: str

    @property
    def name(self) -> str:
        """The unversioned type."""
        return strip_version(self.type)


def read_head(subject: str, body: bytes) -> EventHead:
    """The envelope of a message on ``vb.evt.<tenant>.<call>.<type>``.

    Raises:
        NotAnEventError: not a JSON object with string ``id``, ``type``, ``tenant_id`` and
            ``call_id``, or its tenant, call or type differ from the subject's.
    """
    tokens = subject.split(".")
    if len(tokens) < 5 or tokens[1] != "evt":
        raise NotAnEventError("not an event subject")
    try:
        envelope = json.loads(body)
    except ValueError:
        raise NotAnEventError("not JSON") from None
    if not isinstance(envelope, dict):
        raise NotAnEventError("not a JSON object")
    fields = {k: envelope.get(k) for k in ("id", "type", "tenant_id", "call_id")}
    if not all(isinstance(v, str) and v for v in fields.values()):
        raise NotAnEventError("id, type, tenant_id and call_id must be strings")
    head = EventHead(**fields)  # type: ignore[arg-type] # checked to be strings above
    if len(head.id) > _MAX_ID or len(head.type) > _MAX_TYPE:
        raise NotAnEventError("id or type too long")
    if head.tenant_id != tokens[2] or head.call_id != tokens[3]:
        raise NotAnEventError("tenant_id or call_id differ from the subject's")
    if ".".join(tokens[4:]) != head.name:
        raise NotAnEventError("type differs from the subject's")
    return head


def by_tenant(hooks: Iterable[Webhook]) -> dict[str, list[Webhook]]:
    """Enabled subscriptions grouped by tenant."""
    out: dict[str, list[Webhook]] = {}
    for hook in hooks:
        if hook.enabled:
            out.setdefault(hook.tenant_id, []).append(hook)
    return out


def route(
    head: EventHead, seq: int, body: bytes, hooks: Mapping[str, Sequence[Webhook]]
) -> list[Outgoing]:
    """One outgoing delivery per subscription of the event's tenant whose filters pass it."""
    return [
        Outgoing(hook.webhook_id, head.tenant_id, head.call_id, head.id, head.type, seq, body)
        for hook in hooks.get(head.tenant_id, ())
        if hook.tenant_id == head.tenant_id and matches(hook.event_types, head.type)
    ]
