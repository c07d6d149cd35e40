"""``voicebus eval scenarios.yaml``: scenario evals of an agent, through the edge.

Each scenario runs as a simulation (``POST /api/v1/agents/{id}/simulate``: the real
conversation in the orchestrator, tenant tools held back), or with ``--audio`` as a real
call (:mod:`.audio_evals`), several at once; the expectations are checked here
(:mod:`.scenarios`). Writes ``report.json``, ``junit.xml``
and ``report.md`` to ``--out``; exits 1 when a scenario fails.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from voicebus.cli.audio_evals import run_all_audio
from voicebus.cli.edge import DEFAULT_URL, ApiKey, Edge, Timeout, Url, error_line
from voicebus.cli.judge import Judge, judge_all
from voicebus.cli.scenarios import (
    Scenario,
    ScenarioError,
    ScenarioFile,
    ScenarioResult,
    evaluate,
    json_report,
    junit_report,
    markdown_report,
    parse,
)
from voicebus.contracts.replay import TurnRecord

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

FAILED = 1
"""Exit status when a scenario fails."""
UNUSABLE = 2
"""Exit status when the scenario file cannot be used."""
SIMULATION_TIMEOUT_S = 600.0
"""A scenario waits for every turn of the agent's LLM (the edge bounds it too)."""


class EdgeRefusedError(Exception):
    """The edge answered a scenario with an error, or could not be reached."""


async def simulate(
    client: httpx.AsyncClient, url: str, api_key: str, agent: str, body: dict[str, Any]
) -> dict[str, Any]:
    """``POST /api/v1/agents/{agent}/simulate``: the edge's answer.

    Raises:
        EdgeRefusedError: an error answer (its status, code and message) or no answer.
    """
    try:
        response = await client.post(
            f"{url.rstrip('/')}/api/v1/agents/{agent}/simulate",
            headers={"Authorization": f"Bearer {api_key}"},
            json=body,
        )
    except httpx.TimeoutException:
        raise EdgeRefusedError(f"the edge at {url} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise EdgeRefusedError(f"cannot reach the edge at {url}: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise EdgeRefusedError(error_line(response))
    found = response.json()
    if not isinstance(found, dict):
        raise EdgeRefusedError(f"{response.status_code}: the edge's answer is not an object")
    return found


async def run_all(
    spec: ScenarioFile, url: str, api_key: str, concurrency: int, timeout_s: float
) -> list[ScenarioResult]:
    """Every scenario's result, in the file's order (``concurrency`` at once)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, scenario: Scenario) -> ScenarioResult:
        async with gate:
            started = time.monotonic()
            try:
                found = await simulate(client, url, api_key, spec.agent, spec.request(scenario))
            except EdgeRefusedError as exc:
                return ScenarioResult(scenario.name, error=str(exc),
                                      duration_s=time.monotonic() - started)  # fmt: skip
            turns = [TurnRecord.model_validate(t) for t in found.get("turns", [])]
            result = evaluate(scenario, turns)
            result.version = found.get("version")
            result.duration_s = time.monotonic() - started
            return result

    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=10.0)) as client:
        return list(await asyncio.gather(*(one(client, s) for s in spec.scenarios)))


def eval_command(
    scenarios: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The scenario file (YAML).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where the reports go.")] = Path("eval-report"),
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=32, help="Scenarios run at once.")
    ] = 4,
    audio: Annotated[
        bool,
        typer.Option(
            "--audio",
            help="Run each scenario as a real call through the whole stack (a browser call): "
            "lines spoken from their WAV files or by the local caller voice, turns timed, "
            "latency budgets checked, tools really called.",
        ),
    ] = False,
    judge_url: Annotated[
        str | None,
        typer.Option(
            "--judge-url",
            envvar="VB_EVAL_JUDGE_URL",
            help="An OpenAI-compatible API base (e.g. the local LLM's http://127.0.0.1:8081/v1) "
            "whose model grades each scenario's rubric; without it rubrics are skipped. Its "
            "key, if it needs one, comes from VB_EVAL_JUDGE_API_KEY.",
        ),
    ] = None,
    judge_model: Annotated[
        str,
        typer.Option("--judge-model", envvar="VB_EVAL_JUDGE_MODEL", help="The judge's model."),
    ] = "gpt-4o-mini",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = SIMULATION_TIMEOUT_S,
) -> None:
    """Run a scenario file against an agent: caller turns in, expectations checked
    (replies, tools with arguments, flow nodes, the end, turn latency with --audio, rubrics
    with an LLM judge); JSON, JUnit XML and markdown reports."""
    try:
        spec = parse(scenarios.read_text(encoding="utf-8"))
    except ScenarioError as exc:
        for problem in exc.problems:
            err.print(f"[red]{escape(str(scenarios))}: {escape(problem)}[/]")
        raise typer.Exit(UNUSABLE) from None
    if audio:
        edge = Edge(url, api_key, timeout_s=timeout)
        results = asyncio.run(run_all_audio(spec, edge, scenarios.parent, concurrency))
    else:
        results = asyncio.run(run_all(spec, url, api_key, concurrency, timeout))
    if judge_url:
        judge = Judge(judge_url, judge_model, os.environ.get("VB_EVAL_JUDGE_API_KEY") or None)
        asyncio.run(judge_all(judge, spec.scenarios, results))
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json_report(spec.agent, results), encoding="utf-8")
    (out / "junit.xml").write_text(junit_report(scenarios.stem, results), encoding="utf-8")
    (out / "report.md").write_text(markdown_report(spec.agent, results), encoding="utf-8")
    for r in results:
        mark = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        console.print(f"{mark} {escape(r.name)}")
        for problem in [r.error] if r.error else r.failures:
            console.print(f"     {escape(str(problem))}")
    passed = sum(r.passed for r in results)
    console.print(f"{passed} of {len(results)} scenario(s) passed; reports in {escape(str(out))}")
    if passed < len(results):
        raise typer.Exit(FAILED)
