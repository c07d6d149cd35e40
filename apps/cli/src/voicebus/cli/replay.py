"""``voicebus replay CALL_ID``: a recorded call run again through an agent version.

Asks the edge (``POST /api/v1/calls/{id}/replay``: the caller's transcripts through the
agent alone), or with ``--audio`` plays the recording's caller channel into a new call
through the whole stack (:mod:`.audio_replay`); prints both conversations side by side and
every difference; ``--assert`` exits 1 when anything of the kinds named by ``--assert-on``
differs, so a team can put real calls in CI.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voicebus.cli.audio_replay import replay_audio
from voicebus.cli.edge import DEFAULT_URL, ApiKey, Edge, Timeout, Url
from voicebus.contracts.replay import (
    DIFF_KINDS,
    CallerInput,
    DiffKind,
    ReplayReport,
    TurnRecord,
    percentile,
)

console = Console(highlight=False, width=160)

DIFFERS = 1
"""Exit status when ``--assert`` finds a difference (a failure to run is 1 as well)."""
AUDIO_ASSERTED: Final[tuple[DiffKind, ...]] = ("transitions", "tools")
"""What ``--assert`` checks by default in an audio replay: the agent's actions. Words heard
and said vary with speech recognition and the LLM; the flow path and tool calls should not."""
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


def describe(turn: TurnRecord | None, caller: CallerInput | None = None) -> str:
    """One side of a turn as text: what was heard when it differs from ``caller``, the
    reply, then tools, nodes, the end and the turn's latency."""
    if turn is None:
        return "—"
    lines = [f"(heard) {said(turn.caller)}"] if turn.caller != caller else []
    lines.append(turn.reply or "(silent)")
    lines += [f"⚙ {s.name}({json.dumps(s.arguments, ensure_ascii=False)})" for s in turn.tools]
    if turn.nodes:
        lines.append("→ " + " → ".join(turn.nodes))
    if turn.ended:
        lines.append("☎ ended the call")
    if turn.latency_ms is not None:
        lines.append(f"⏱ {turn.latency_ms} ms")
    return "\n".join(lines)


def said(caller: CallerInput | None) -> str:
    """A caller input as shown."""
    return "" if caller is None else (caller.text or f"(keys) {caller.dtmf}")


def latency_line(turns: list[TurnRecord]) -> str | None:
    """``p50 … ms, p95 … ms over N turns``; None when no turn was timed."""
    timed = [t.latency_ms for t in turns if t.latency_ms is not None]
    if not timed:
        return None
    return f"p50 {percentile(timed, 0.5)} ms, p95 {percentile(timed, 0.95)} ms over {len(timed)}"


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
        mark = "≠ " if i in changed else ""
        table.add_row(f"{mark}{i}", escape(said(caller)), escape(describe(original, caller)),
                      escape(describe(replayed, caller)))  # fmt: skip
    console.print(table)
    for side, turns in (("recorded", report.original), ("replay", report.replayed)):
        line = latency_line(turns)
        if line is not None:
            console.print(f"turn latency, {side}: {line}")
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
        str | None,
        typer.Option(
            "--assert-on",
            help=f"Kinds --assert checks, of {','.join(DIFF_KINDS)} (default: all; with "
            f"--audio: {','.join(AUDIO_ASSERTED)}).",
            show_default=False,
        ),
    ] = None,
    audio: Annotated[
        bool,
        typer.Option(
            "--audio",
            help="Play the recording's caller channel, in real time, into a new call through "
            "the real stack (a browser call), instead of the caller's transcripts into the "
            "agent alone; compares what was heard and each turn's latency too.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = SIMULATION_TIMEOUT_S,
) -> None:
    """Run a recorded call again through an agent version and compare, turn by turn:
    replies, flow nodes, tool calls with arguments, the end of the call."""
    default = AUDIO_ASSERTED if audio else DIFF_KINDS
    kinds = parse_kinds(",".join(default) if assert_on is None else assert_on)
    edge = Edge(url, api_key, timeout_s=timeout)
    if audio:
        report, new_call = replay_audio(edge, call_id, agent_id=agent, agent_version=agent_version)
        if not as_json:
            console.print(f"replayed as call {new_call}")
    else:
        body: dict[str, Any] = {"agent_version": agent_version, "agent_id": agent}
        report = ReplayReport.model_validate(edge.json("POST", f"/calls/{call_id}/replay", body))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        show(report)
    if assert_ and any(d.kind in kinds for d in report.differences):
        raise typer.Exit(DIFFERS)
