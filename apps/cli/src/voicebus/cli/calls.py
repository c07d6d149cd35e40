"""``voicebus calls`` and ``voicebus events tail``: the tenant's calls and its live feed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from fnmatch import fnmatch
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voicebus.cli.edge import DEFAULT_URL, ApiKey, Edge, Timeout, Url

calls_app = typer.Typer(help="The tenant's calls.", no_args_is_help=True)
events_app = typer.Typer(help="The tenant's live event feed.", no_args_is_help=True)
console = Console(highlight=False)

QUIET_BOUND_S = 45.0
"""Read bound on the live feed: the edge sends a keep-alive comment every 15 s, so three
missed ones mean the edge is gone."""


@calls_app.command("list")
def list_calls(
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 20,
    status: Annotated[str | None, typer.Option(help="Only calls in this status.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's calls.")] = None,
    phone: Annotated[str | None, typer.Option(help="Only calls from or to this number.")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 10.0,
) -> None:
    """The key's tenant's calls, newest first."""
    params = {"limit": min(limit, 200), "status": status, "agent_id": agent, "phone": phone}
    page = Edge(url, api_key, timeout).json("GET", "/calls", params=params)
    table = Table("call", "status", "direction", "agent", "started", "seconds", "ended")
    for call in page["calls"]:
        seconds = call.get("duration_s")
        table.add_row(
            call["call_id"], call.get("status") or "", call.get("direction") or "",
            call.get("agent_id") or "", call.get("started_at") or "",
            f"{seconds:.1f}" if seconds is not None else "", call.get("ended_reason") or "",
        )  # fmt: skip
    console.print(table)


@calls_app.command("show")
def show_call(
    call_id: Annotated[str, typer.Argument(help="Call id.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 10.0,
) -> None:
    """One call, then its events, one line each."""
    edge = Edge(url, api_key, timeout)
    call = edge.json("GET", f"/calls/{call_id}")
    console.print_json(json.dumps(call))
    after: str | None = None
    while True:
        page = edge.json("GET", f"/calls/{call_id}/events", params={"after": after})
        for event in page["events"]:
            console.print(event_line(event), soft_wrap=True)
        after = page.get("next_after")
        if not after or not page["events"]:
            return


def event_line(event: dict[str, Any]) -> str:
    """``<time> <call> <type> <data>`` for one CloudEvents envelope."""
    data = json.dumps(event.get("data", {}), separators=(",", ":"), ensure_ascii=False)
    return escape(f"{event.get('time', '')} {event.get('call_id', '')} {event.get('type')} {data}")


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) of each Server-Sent Event in a stream of lines; comments skipped."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


def _until_quiet(lines: Iterator[str], deadline: float | None) -> Iterator[tuple[str, str]]:
    """The stream's events; a read that times out at the ``--for`` deadline simply ends it."""
    try:
        yield from sse_events(lines)
    except httpx.ReadTimeout:
        if deadline is None or time.monotonic() < deadline:
            raise


@events_app.command("tail")
def tail(
    call: Annotated[str | None, typer.Option(help="Only this call id.")] = None,
    type_glob: Annotated[
        str | None, typer.Option("--type", help="Event type glob, e.g. 'call.*'.")
    ] = None,
    count: Annotated[int | None, typer.Option(help="Exit after this many events.", min=1)] = None,
    for_s: Annotated[
        float | None, typer.Option("--for", help="Exit after this many seconds.", min=0.1)
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 10.0,
) -> None:
    """Print the key's tenant's events live, one line each, from now on."""
    deadline = None if for_s is None else time.monotonic() + for_s
    read_bound = QUIET_BOUND_S if for_s is None else min(QUIET_BOUND_S, for_s)
    shown = 0
    try:
        with Edge(url, api_key, timeout).stream("/events/stream", read_bound) as response:
            for name, data in _until_quiet(response.iter_lines(), deadline):
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if name == "overflow":
                    raise typer.Exit(1)
                event = json.loads(data)
                if call and event.get("call_id") != call:
                    continue
                if type_glob and not fnmatch(str(event.get("type", "")), type_glob):
                    continue
                console.print(event_line(event), soft_wrap=True)
                shown += 1
                if count is not None and shown >= count:
                    return
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
