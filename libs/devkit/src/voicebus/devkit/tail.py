"""``voicebus bus tail``: the event stream, live, one readable line per event."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

import nats
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from voicebus.contracts import streams, subjects
from voicebus.contracts.events import CallEvent, parse_event

_MAX_SUMMARY = 100


@dataclass(frozen=True)
class TailFilter:
    """What to show.

    Attributes:
        tenant_id: one tenant, or all.
        call_id: one call, or all.
        type_glob: shell-style pattern over the event type, e.g. ``call.*`` or
            ``transcript.final*``.
        from_start: replay the whole stream instead of starting at "now".
    """

    tenant_id: str | None = None
    call_id: str | None = None
    type_glob: str | None = None
    from_start: bool = False

    @property
    def subject(self) -> str:
        """The server-side filter subject (the type glob is applied client-side)."""
        return subjects.evt_filter(self.tenant_id, self.call_id)

    def matches(self, event: CallEvent) -> bool:
        """Whether the event passes the type glob."""
        if self.type_glob is None:
            return True
        return fnmatch.fnmatchcase(event.type, self.type_glob) or fnmatch.fnmatchcase(
            event.event_name, self.type_glob
        )


def summary(event: CallEvent) -> str:
    """The most telling fields of an event's data, as ``key=value`` pairs."""
    parts = []
    for key, value in event.data.model_dump(mode="json", exclude_defaults=True).items():
        if isinstance(value, dict | list) and not value:
            continue
        text = value if isinstance(value, str) else str(value)
        parts.append(f"{key}={text!r}" if isinstance(value, str) else f"{key}={text}")
    line = " ".join(parts)
    return line if len(line) <= _MAX_SUMMARY else line[: _MAX_SUMMARY - 1] + "…"


def format_line(event: CallEvent) -> str:
    """One line: time, tenant, call, type, summary."""
    stamp = event.time.strftime("%H:%M:%S.%f")[:-3]
    return f"{stamp}  {event.tenant_id:<10} {event.call_id:<36}  {event.type:<28} {summary(event)}"


async def tail(
    nats_url: str,
    flt: TailFilter,
    emit: Callable[[str], None],
    *,
    count: int | None = None,
    timeout: float | None = None,
) -> int:
    """Print matching events until ``count`` are shown, ``timeout`` passes, or cancelled.

    Returns:
        How many events were shown.
    """
    nc = await nats.connect(nats_url, name="voicebus-events-tail", max_reconnect_attempts=-1)
    shown = 0
    done = asyncio.Event()
    try:
        js = nc.jetstream()
        while True:
            try:
                await js.stream_info(streams.EVENTS.name)
                break
            except NotFoundError:
                emit(f"waiting for stream {streams.EVENTS.name} (no service has provisioned it)")
                await asyncio.sleep(1.0)

        async def on_msg(msg: Msg) -> None:
            nonlocal shown
            try:
                event = parse_event(msg.data)
            except ValidationError as err:
                emit(f"unparseable event on {msg.subject}: {err.error_count()} error(s)")
                return
            if flt.matches(event):
                emit(format_line(event))
                shown += 1
                if count is not None and shown >= count:
                    done.set()

        policy = DeliverPolicy.ALL if flt.from_start else DeliverPolicy.NEW
        sub = await js.subscribe(
            flt.subject,
            cb=on_msg,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=policy),
        )
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            await sub.unsubscribe()
    finally:
        await nc.drain()
    return shown
