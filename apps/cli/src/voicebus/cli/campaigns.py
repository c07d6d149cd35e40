"""``voicebus campaign``: create, upload, start, pause, resume, cancel, status, report, DNC.

Every command acts for the tenant of ``--api-key`` through the REST edge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from voicebus.cli.edge import DEFAULT_URL, ApiKey, Edge, Timeout, Url
from voicebus.contracts import campaigns as api

app = typer.Typer(
    help="Outbound campaigns: lists, DNC, calling windows, pacing.", no_args_is_help=True
)
dnc_app = typer.Typer(help="Do-not-call lists.", no_args_is_help=True)
app.add_typer(dnc_app, name="dnc")
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

CampaignArg = Annotated[str, typer.Argument(help="Campaign id.")]
DONE = {api.CampaignStatus.COMPLETED, api.CampaignStatus.CANCELLED}
UPLOAD_CHUNK = 64 * 1024


def _show(campaign: api.Campaign) -> None:
    s = campaign.spec
    console.print(
        f"[bold]{escape(s.name)}[/] {campaign.campaign_id} [cyan]{campaign.status.value}[/] "
        f"agent={s.agent_id} mode={s.mode.value} concurrency={s.concurrency} "
        f"pacing={s.pacing_cps:g}/s"
    )


@app.command()
def create(
    spec: Annotated[
        Path | None, typer.Option(help="CampaignSpec as YAML or JSON (options override it).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Campaign name.")] = None,
    agent: Annotated[str | None, typer.Option(help="Agent id.")] = None,
    caller_id: Annotated[
        list[str] | None, typer.Option(help="Caller id (E.164); repeatable.")
    ] = None,
    mode: Annotated[api.CampaignMode | None, typer.Option(help="conversation|notification")] = None,
    message: Annotated[str | None, typer.Option(help="Notification text.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Calls at once.")] = None,
    pacing: Annotated[float | None, typer.Option(help="Dials per second.")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Repeat-safe creation: the same key creates once.")
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 10.0,
) -> None:
    """Create a draft campaign; prints its id (alone, on the last line of standard output)."""
    import yaml

    data: dict[str, Any] = yaml.safe_load(spec.read_text(encoding="utf-8")) if spec else {}
    overrides = {"name": name, "agent_id": agent, "caller_ids": caller_id, "mode": mode,
                 "message": message, "concurrency": concurrency, "pacing_cps": pacing}  # fmt: skip
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        model = api.CampaignSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        err.print(f"[red]invalid campaign: {escape(problems)}[/]")
        raise typer.Exit(2) from None
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    body = model.model_dump(mode="json")
    created = Edge(url, api_key, timeout).json("POST", "/campaigns", body, headers=headers)
    campaign = api.Campaign.model_validate(created)
    _show(campaign)
    print(campaign.campaign_id, flush=True)


def _chunks(file: Path, on_sent: Callable[[int], None]) -> Iterator[bytes]:
    sent = 0
    with file.open("rb") as stream:
        while block := stream.read(UPLOAD_CHUNK):
            sent += len(block)
            on_sent(sent)
            yield block


@app.command()
def upload(
    campaign_id: CampaignArg,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".csv or .json(l)")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 60.0,
) -> None:
    """Send a contact file to the campaign, with a progress bar; bad rows by line."""
    kind = "application/jsonl" if file.suffix in {".json", ".jsonl"} else "text/csv"
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(file.name, total=file.stat().st_size)
        data = b"".join(_chunks(file, lambda n: bar.update(task, completed=n)))
        response = Edge(url, api_key, timeout).request(
            "POST", f"/campaigns/{campaign_id}/contacts", content=data,
            headers={"Content-Type": kind},
        )  # fmt: skip
    report = api.UploadReport.model_validate(response.json())
    console.print(
        f"rows {report.rows:,}: loaded {report.loaded:,}, merged {report.merged:,}, "
        f"on a DNC list {report.dnc:,}, rejected {report.rejected:,}"
    )
    if report.errors:
        table = Table("line", "reason", title="rejected rows (first 20)", title_justify="left")
        for e in report.errors[:20]:
            table.add_row(str(e.line), escape(e.reason))
        console.print(table)


def _move(verb: str) -> Callable[..., None]:
    def command(
        campaign_id: CampaignArg,
        url: Url = DEFAULT_URL,
        api_key: ApiKey = "",
        timeout: Timeout = 10.0,
    ) -> None:
        moved = Edge(url, api_key, timeout).json("POST", f"/campaigns/{campaign_id}/{verb}")
        _show(api.Campaign.model_validate(moved))

    command.__doc__ = f"{verb.capitalize()} the campaign."
    return command


for _verb in ("start", "pause", "resume", "cancel"):
    app.command(_verb)(_move(_verb))


def status_table(p: api.Progress) -> Table:
    """Contacts by state and attempts by outcome, as a table."""
    table = Table(title=f"campaign {p.campaign_id}: {p.status.value}", title_justify="left")
    table.add_column("contacts", justify="right")
    table.add_column("count", justify="right")
    for state, n in sorted(p.by_state.items()):
        table.add_row(state, f"{n:,}")
    table.add_row("[bold]total[/]", f"{p.contacts:,}")
    table.add_row("", "")
    table.add_row("[bold]attempts[/]", f"{p.dialed:,}")
    table.add_row("in flight", f"{p.in_flight:,}")
    for outcome, n in sorted(p.by_outcome.items()):
        table.add_row(outcome, f"{n:,}")
    return table


@app.command()
def status(
    campaign_id: CampaignArg,
    watch: Annotated[bool, typer.Option(help="Refresh every second until it ends.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 10.0,
) -> None:
    """Live counts by contact state and attempt outcome."""
    edge = Edge(url, api_key, timeout)

    def progress() -> api.Progress:
        return api.Progress.model_validate(edge.json("GET", f"/campaigns/{campaign_id}/progress"))

    if not watch:
        console.print(status_table(progress()))
        return
    try:
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                p = progress()
                live.update(status_table(p))
                if p.status in DONE:
                    return
                time.sleep(1.0)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def report(
    campaign_id: CampaignArg,
    out: Annotated[Path | None, typer.Option(help="CSV file; default: standard output.")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 60.0,
) -> None:
    """The final report per contact (attempts, outcome, duration, recording id) as CSV."""
    text = Edge(url, api_key, timeout).request("GET", f"/campaigns/{campaign_id}/report").text
    if out is None:
        print(text, end="", flush=True)
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {max(text.count(chr(10)) - 1, 0):,} contacts to {out}")


def _dnc(verb: str, numbers: list[str], campaign: str | None, edge: Edge) -> int:
    path = "/dnc" if verb == "add" else "/dnc/remove"
    reply = edge.json("POST", path, {"numbers": numbers, "campaign_id": campaign})
    return int(reply.get("changed", 0))


@dnc_app.command("add")
def dnc_add(
    numbers: Annotated[list[str], typer.Argument(help="Numbers (with +country code).")],
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's list.")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 10.0,
) -> None:
    """Add numbers to the tenant's (or a campaign's) do-not-call list."""
    console.print(f"added {_dnc('add', numbers, campaign, Edge(url, api_key, timeout))}")


@dnc_app.command("remove")
def dnc_remove(
    numbers: Annotated[list[str], typer.Argument(help="Numbers (with +country code).")],
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's list.")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
    timeout: Timeout = 10.0,
) -> None:
    """Remove numbers from a do-not-call list."""
    console.print(f"removed {_dnc('remove', numbers, campaign, Edge(url, api_key, timeout))}")
