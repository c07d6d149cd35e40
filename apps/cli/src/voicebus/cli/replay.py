"""``voicebus replay CALL_ID``: a recorded call run again through an agent version.

Asks the edge (``POST /api/v1/calls/{id}/replay``), prints both conversations side by
side and every difference; ``--assert`` exits 1 when anything of the kinds named by
``--assert-on`` differs, so a team can put real calls in CI.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voicebus.cli.edge import DEFAULT_URL, ApiKey, Edge, Timeout, Url
from voicebus.contracts.replay import DIFF_KINDS, ReplayReport, TurnRecord

console = Console(highlight=False, width=160)

DIFFERS = 1
"""Exit status when ``--assert`` finds a difference (a failure to run is 1 as well)."""
SIMULATION_TIMEOUT_S = 600.0
"""A replay waits for every turn of the agent's LLM (the edge bounds it too)."""


def parse_kinds(raw: str) -> set[str]:
    """``reply,tools`` → the kinds; refuses an unknown one, naming it.

    Raises:
        typer.BadParameter: a kind that does not exist.
    """
    kinds = {k.strip() for k in raw.split(",") if k.strip()}
    unknown = sorted(kinds - set(DIFF_KINDS))
    if unknown:
        raise typer.BadParameter(
            f"unknown kind(s) {', '.join(unknown)}; use {', '.join(DIFF_KINDS)}"
        )
    return kinds


def describe(turn: TurnRecord | None) -> str:
    """One side of a turn as text: the reply, then tools, nodes and the end."""
    if turn is None:
        return "—"
    lines = [turn.reply or "(silent)"]
    lines += [f"⚙ {s.name}({json.dumps(s.arguments, ensure_ascii=False)})" for s in turn.tools]
    if turn.nodes:
        lines.append("→ " + " → ".join(turn.nodes))
    if turn.ended:
        lines.append("☎ ended the call")
    return "\n".join(lines)


def show(report: ReplayReport) -> None:
    """Both conversations side by side, then the differences."""
    changed = {d.turn for d in report.differences}
    table = Table(
        title=f"call {report.call_id}: agent {report.agent_id} "
        f"v{report.original_version or '?'} (recorded) vs v{report.replayed_version} (replay)",
        show_lines=True,
    )
    for column in ("turn", "caller", "recorded", "replay"):
        table.add_column(column, overflow="fold")
    for i in range(max(len(report.original), len(report.replayed))):
        original = report.original[i] if i < len(report.original) else None
        replayed = report.replayed[i] if i < len(report.replayed) else None
        caller = (original or replayed or TurnRecord()).caller
        said = "" if caller is None else (caller.text or f"(keys) {caller.dtmf}")
        mark = "≠ " if i in changed else ""
        table.add_row(f"{mark}{i}", escape(said), escape(describe(original)),
                      escape(describe(replayed)))  # fmt: skip
    console.print(table)
    if not report.differences:
        console.print("[green]no differences[/]")
        return
    console.print(f"[yellow]{len(report.differences)} difference(s):[/]")
    for d in report.differences:
        was = json.dumps(d.original, ensure_ascii=False)
        now = json.dumps(d.replayed, ensure_ascii=False)
        console.print(escape(f"  turn {d.turn} {d.kind}: {was} → {now}"))


def replay(
    call_id: Annotated[str, typer.Argument(help="The recorded call.")],
    agent_version: Annotated[
        int | None,
        typer.Option("--agent-version", min=1, help="Version to replay (default: current)."),
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Another agent id (default: the call's).")
    ] = None,
    assert_: Annotated[
        bool, typer.Option("--assert", help="Exit 1 when anything of --assert-on differs.")
    ] = False,
    assert_on: Annotated[
        str, typer.Option("--assert-on", help=f"Kinds --assert checks: {','.join(DIFF_KINDS)}.")
    ] = ",".join(DIFF_KINDS),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = SIMULATION_TIMEOUT_S,
) -> None:
    """Run a recorded call's caller turns through an agent version and compare, turn by
    turn: replies, flow nodes, tool calls with arguments, the end of the call."""
    kinds = parse_kinds(assert_on)
    body: dict[str, Any] = {"agent_version": agent_version, "agent_id": agent}
    edge = Edge(url, api_key, timeout_s=timeout)
    report = ReplayReport.model_validate(edge.json("POST", f"/calls/{call_id}/replay", body))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        show(report)
    if assert_ and any(d.kind in kinds for d in report.differences):
        raise typer.Exit(DIFFERS)
