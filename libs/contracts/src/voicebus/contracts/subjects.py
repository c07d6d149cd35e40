"""Subject builders for every shape on the voicebus bus.

Services never type a subject by hand: they call these functions, which refuse
any token that would change the subject's meaning. A call id such as ``"a.b"``
would silently address two tokens, and ``"*"`` or ``">"`` would address every
call, so a bad token is a :class:`InvalidTokenError` error, never a wrong subject.

Shapes (see ARCHITECTURE.md, "The bus"):

- ``vb.audio.<call>.in`` / ``vb.audio.<call>.out`` — core NATS, raw PCM frames
- ``vb.ctl.<call>.<verb>`` — core NATS commands within one live call
- ``vb.evt.<tenant>.<call>.<type>`` — JetStream stream ``VB_EVENTS``
- ``vb.cmd.<domain>.<verb>`` — JetStream work queue ``VB_COMMANDS``
- ``vb.rpc.<service>.<resource>.<verb>`` — request/reply to the owning service
- ``vb.dlq.<service>.<reason>`` — JetStream stream ``VB_DEAD_LETTERS``: messages a
  consumer could not handle, kept with their original subject, headers and data
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from voicebus.contracts.errors import InvalidTokenError

ROOT: Final = "vb"

# A token is what may stand between two dots. Letters, digits, '_' and '-' cover
# UUIDs, ULIDs, slugs and provider ids; anything else is refused.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# An event type is the subject's tail, one token per dotted part (``call.started``).
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class CtlVerb(StrEnum):
    """Verbs of the per-call control plane (``vb.ctl.<call>.<verb>``)."""

    SAY = "say"
    CLEAR = "clear"
    HANGUP = "hangup"
    TRANSFER = "transfer"
    DTMF = "dtmf"
    KEYPAD = "keypad"


class AudioDirection(StrEnum):
    """Direction of an audio subject, seen from the caller."""

    IN = "in"
    OUT = "out"


def token(value: str, what: str = "token") -> str:
    """Return ``value`` if it is safe as one subject token, else raise.

    Args:
        value: the id or name to place between two dots.
        what: a name for the value, used in the error message.

    Raises:
        InvalidTokenError: empty, too long, or containing a dot, a wildcard
            (``*``, ``>``), whitespace or any other character outside
            ``[A-Za-z0-9_-]``.
    """
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise InvalidTokenError(what, value)
    return value


def event_type_tokens(event_type: str) -> str:
    """Validate an unversioned event type such as ``call.started``.

    The event type becomes the subject's tail, one token per dotted part, so
    ``vb.evt.acme.c1.call.>`` selects every ``call.*`` event of one call.
    """
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise InvalidTokenError("event type", event_type)
    return event_type


def audio(call_id: str, direction: AudioDirection) -> str:
    """``vb.audio.<call>.<in|out>``: raw PCM16LE frames of one call."""
    return f"{ROOT}.audio.{token(call_id, 'call id')}.{AudioDirection(direction).value}"


def audio_in(call_id: str) -> str:
    """``vb.audio.<call>.in``: caller audio, gateway → media and recorder."""
    return audio(call_id, AudioDirection.IN)


def audio_out(call_id: str) -> str:
    """``vb.audio.<call>.out``: agent audio, media → gateway and recorder."""
    return audio(call_id, AudioDirection.OUT)


def audio_played(call_id: str) -> str:
    """``vb.audio.<call>.played``: playback marks, gateway → media.

    The provider confirmed that agent audio up to a point has been played to
    the caller; media uses it to know what the caller actually heard.
    """
    return f"{ROOT}.audio.{token(call_id, 'call id')}.played"


def keys(call_id: str) -> str:
    """``vb.keys.<call>``: keys the caller pressed while the keypad is masked, gateway →
    the call's orchestrator only (core NATS, never stored: the stored ``dtmf.received``
    shows them as ``*``)."""
    return f"{ROOT}.keys.{token(call_id, 'call id')}"


def ctl(call_id: str, verb: CtlVerb | str) -> str:
    """``vb.ctl.<call>.<verb>``: a command within one live call."""
    try:
        checked = CtlVerb(verb)
    except ValueError:
        raise InvalidTokenError("control verb", str(verb)) from None
    return f"{ROOT}.ctl.{token(call_id, 'call id')}.{checked.value}"


def ctl_all(call_id: str) -> str:
    """``vb.ctl.<call>.*``: every control command of one call."""
    return f"{ROOT}.ctl.{token(call_id, 'call id')}.*"


def evt(tenant_id: str, call_id: str, event_type: str) -> str:
    """``vb.evt.<tenant>.<call>.<type>``: one fact about a call.

    Args:
        tenant_id: the owning tenant.
        call_id: the call the event is about.
        event_type: the unversioned type, e.g. ``call.started`` (a versioned
            ``call.started.v1`` is accepted and its version suffix dropped).
    """
    base = strip_version(event_type)
    return (
        f"{ROOT}.evt.{token(tenant_id, 'tenant id')}.{token(call_id, 'call id')}."
        f"{event_type_tokens(base)}"
    )


def evt_filter(
    tenant_id: str | None = None,
    call_id: str | None = None,
    event_type: str | None = None,
) -> str:
    """A subscription filter over ``vb.evt``; ``None`` means "any".

    ``evt_filter("acme")`` → ``vb.evt.acme.>``; ``evt_filter(call_id="c1")`` →
    ``vb.evt.*.c1.>``; ``evt_filter("acme", "c1", "call.ended")`` → one subject.
    """
    tenant = token(tenant_id, "tenant id") if tenant_id is not None else "*"
    call = token(call_id, "call id") if call_id is not None else "*"
    if event_type is None:
        return f"{ROOT}.evt.{tenant}.{call}.>"
    return f"{ROOT}.evt.{tenant}.{call}.{event_type_tokens(strip_version(event_type))}"


def cmd(domain: str, verb: str) -> str:
    """``vb.cmd.<domain>.<verb>``: a command with exactly one owner (work queue)."""
    return f"{ROOT}.cmd.{token(domain, 'command domain')}.{token(verb, 'command verb')}"


def rpc(service: str, resource: str, verb: str) -> str:
    """``vb.rpc.<service>.<resource>.<verb>``: request/reply to the data owner."""
    return (
        f"{ROOT}.rpc.{token(service, 'service')}.{token(resource, 'resource')}."
        f"{token(verb, 'verb')}"
    )


def dlq(service: str, reason: str) -> str:
    """``vb.dlq.<service>.<reason>``: a message ``service`` could not handle, and why."""
    return f"{ROOT}.dlq.{token(service, 'service')}.{token(reason, 'dead-letter reason')}"


def max_deliveries_advisory(stream: str, consumer: str | None = None) -> str:
    """JetStream's advisory when a consumer's message ran out of deliveries.

    ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`` (``*``: any consumer).
    """
    name = token(consumer, "consumer") if consumer is not None else "*"
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{token(stream, 'stream')}.{name}"


def strip_version(event_type: str) -> str:
    """``call.started.v1`` → ``call.started``; an unversioned type is returned as is."""
    head, _, last = event_type.rpartition(".")
    if head and re.fullmatch(r"v[0-9]+", last):
        return head
    return event_type


_AUDIO_TAILS: Final = frozenset({"in", "out", "played"})
_CTL_VERBS: Final = frozenset(v.value for v in CtlVerb)
_EVENT_TAIL_TOKENS: Final = 4
"""At most this many event-type tokens are kept in a pattern (``call.ended`` has two)."""


def subject_pattern(subject: str) -> str:
    """The bounded pattern of a concrete subject, for metric labels and logs about traffic.

    Call and tenant ids are replaced by ``*`` and anything not shaped like a voicebus
    subject collapses to its first token and ``>``, so the number of patterns stays
    bounded however many calls, tenants and reply inboxes pass through a process:

    - ``vb.audio.c1.in`` → ``vb.audio.*.in``; ``vb.ctl.c1.say`` → ``vb.ctl.*.say``
    - ``vb.evt.acme.c1.call.ended`` → ``vb.evt.*.*.call.ended``
    - ``vb.cmd.call.originate``, ``vb.rpc.audit.calls.get``, ``vb.dlq.audit.invalid``: as is
    - ``_INBOX.x.y`` → ``_INBOX.>``; ``$KV.vb_sessions.c1`` → ``$KV.vb_sessions.>``

    Never raises; an unexpected subject yields a coarse pattern, not an error.
    """
    parts = subject.split(".")
    if len(parts) >= 2 and parts[0] == ROOT:
        kind = parts[1]
        if kind == "audio" and len(parts) == 4:
            tail = parts[3] if parts[3] in _AUDIO_TAILS else "*"
            return f"{ROOT}.audio.*.{tail}"
        if kind == "ctl" and len(parts) == 4:
            verb = parts[3] if parts[3] in _CTL_VERBS else "*"
            return f"{ROOT}.ctl.*.{verb}"
        if kind == "evt" and len(parts) >= 5:
            tail = ".".join(parts[4:])
            if len(parts) - 4 > _EVENT_TAIL_TOKENS or not _EVENT_TYPE.fullmatch(tail):
                tail = ">"
            return f"{ROOT}.evt.*.*.{tail}"
        if kind in ("cmd", "dlq") and len(parts) == 4 and all(map(_TOKEN.fullmatch, parts)):
            return subject
        if kind == "rpc" and len(parts) == 5 and all(map(_TOKEN.fullmatch, parts)):
            return subject
        return f"{ROOT}.{kind}.>" if _TOKEN.fullmatch(kind) else f"{ROOT}.>"
    if parts[0] in ("$KV", "$JS") and len(parts) >= 3 and _TOKEN.fullmatch(parts[1]):
        return f"{parts[0]}.{parts[1]}.>"
    head = parts[0] if _TOKEN.fullmatch(parts[0]) or parts[0] in ("$KV", "$JS") else "?"
    return f"{head}.>"


EVENTS_ALL: Final = f"{ROOT}.evt.>"
COMMANDS_ALL: Final = f"{ROOT}.cmd.>"
AUDIO_IN_ALL: Final = f"{ROOT}.audio.*.in"
AUDIO_OUT_ALL: Final = f"{ROOT}.audio.*.out"
AUDIO_PLAYED_ALL: Final = f"{ROOT}.audio.*.played"
KEYS_ALL: Final = f"{ROOT}.keys.*"
DEAD_LETTERS_ALL: Final = f"{ROOT}.dlq.>"
