"""``voicebus agent``: validate agent files offline; list, import and export over the REST edge."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voicebus.cli.agent_files import AgentFile, agent_files, dump_agent, read_agent
from voicebus.cli.edge import DEFAULT_URL, ApiKey, Edge, Timeout, Url
from voicebus.contracts.agents import AgentDefinition

app = typer.Typer(help="Agents: validate, import and export agent files.", no_args_is_help=True)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Paths = Annotated[list[Path], typer.Argument(help="Agent files or directories of them.")]


def _report_problems(files: list[AgentFile]) -> int:
    bad = 0
    for found in files:
        if found.problems:
            bad += 1
            for problem in found.problems:
                err.print(f"[red]{escape(str(found.path))}: {escape(str(problem))}[/]")
    return bad


@app.command()
def validate(paths: Paths) -> None:
    """Check agent files offline; every problem is printed with its file and field."""
    files = [read_agent(p) for p in agent_files(paths)]
    bad = _report_problems(files)
    for found in files:
        if not found.problems:
            console.print(f"{escape(str(found.path))}: ok")
    raise typer.Exit(1 if bad else 0)


def same_definition(stored: dict[str, Any], found: AgentFile) -> bool:
    """Whether a file says what the stored version says (both read as definitions)."""
    if found.definition is None:
        return False
    current = AgentDefinition.model_validate(stored)
    return current.model_dump(mode="json") == found.definition.model_dump(mode="json")


@app.command("import")
def import_(
    paths: Paths,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 10.0,
) -> None:
    """Import agent files as the key's tenant: version 1 of a new agent, a new version of a
    changed one, nothing for an unchanged one."""
    files = [read_agent(p) for p in agent_files(paths)]
    if _report_problems(files):
        raise typer.Exit(1)
    edge = Edge(url, api_key, timeout)
    for found in files:
        response = edge.request("GET", f"/agents/{found.agent_id}", ok_404=True)
        if response.status_code == 404:
            body = {"agent_id": found.agent_id, "definition": found.raw}
            record = edge.json("POST", "/agents", body)
        else:
            stored = response.json()
            if same_definition(stored["definition"], found):
                console.print(f"{found.agent_id}: version {stored['version']} (unchanged)")
                continue
            body = {"definition": found.raw, "expected_version": stored["current_version"]}
            record = edge.json("PUT", f"/agents/{found.agent_id}", body)
        console.print(f"{found.agent_id}: version {record['version']}")


@app.command()
def export(
    agent_id: Annotated[str, typer.Argument(help="Agent id.")],
    version: Annotated[int | None, typer.Option(help="A version; the current one by default.")] = (
        None
    ),
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 10.0,
) -> None:
    """Print (or --out) an agent's definition as YAML."""
    path = f"/agents/{agent_id}" + (f"/versions/{version}" if version is not None else "")
    record = Edge(url, api_key, timeout).json("GET", path)
    text = dump_agent(AgentDefinition.model_validate(record["definition"]))
    if out is None:
        console.print(escape(text), end="", soft_wrap=True)
    else:
        out.write_text(text, encoding="utf-8")


@app.command("list")
def list_(url: Url = DEFAULT_URL, api_key: ApiKey = "", timeout: Timeout = 10.0) -> None:
    """The agents the key's tenant can use (its own and the shared templates)."""
    table = Table("agent", "version", "name")
    for agent in Edge(url, api_key, timeout).json("GET", "/agents"):
        table.add_row(
            str(agent.get("agent_id", "")), str(agent.get("version", "")), agent.get("name", "")
        )
    console.print(table)
