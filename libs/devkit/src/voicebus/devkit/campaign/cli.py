"""``voicebus campaign``: create, upload, start, pause, resume, cancel, status, report.

The command talks to the campaigns service directly over NATS request/reply
(``--nats-url``; by default the running ``voicebus dev`` stack's), the same
subjects the REST edge forwards to.
"""

from __future__ import annotations

import asyncio
import csv
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from voicebus.contracts import campaigns as api

if TYPE_CHECKING:
    from voicebus.devkit.campaign.client import CampaignClient

T = TypeVar("T")
app = typer.Typer(
    help="Outbound campaigns: lists, DNC, calling windows, pacing.", no_args_is_help=True
)
dnc_app = typer.Typer(help="Do-not-call lists.", no_args_is_help=True)
app.add_typer(dnc_app, name="dnc")
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

NatsUrl = Annotated[
    str | None, typer.Option(envvar="VB_NATS_URL", help="NATS; default: the dev stack's.")
]
Tenant = Annotated[str, typer.Option(envvar="VB_TENANT", help="Tenant id.")]
CampaignArg = Annotated[str, typer.Argument(help="Campaign id.")]
DONE = {api.CampaignStatus.COMPLETED, api.CampaignStatus.CANCELLED}


def nats_url_or_dev(url: str | None) -> str:
    """``url``, or the running dev stack's NATS, or the default local one."""
    if url:
        return url
    from voicebus.devkit.stack import read_state

    state = read_state(Path("var") / "dev")
    found = state.get("nats_url") if state else None
    return found if isinstance(found, str) else "nats://127.0.0.1:4222"


def _run(url: str | None, tenant: str, work: Callable[[CampaignClient], Awaitable[T]]) -> T:
    # Imported here: `voicebus --help` and the other commands stay fast.
    import nats

    from voicebus.devkit.campaign.client import CampaignClient, CampaignError

    async def main() -> T:
        nc = await nats.connect(nats_url_or_dev(url), connect_timeout=5)
        try:
            return await work(CampaignClient(nc, tenant))
        finally:
            await nc.close()

    try:
        return asyncio.run(main())
    except CampaignError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    except (OSError, nats.errors.Error) as exc:
        err.print(f"[red]cannot reach NATS: {escape(str(exc))}[/]")
        raise typer.Exit(1) from None


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
    tenant: Tenant = "default",
    nats_url: NatsUrl = None,
) -> None:
    """Create a draft campaign; prints its id."""
    import yaml

    data: dict[str, Any] = yaml.safe_load(spec.read_text(encoding="utf-8")) if spec else {}
    overrides = {"name": name, "agent_id": agent, "caller_ids": caller_id, "mode": mode,
                 "message": message, "concurrency": concurrency, "pacing_cps": pacing}  # fmt: skip
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        model = api.CampaignSpec.model_validate(data)
    except ValueError as exc:
        err.print(f"[red]invalid campaign: {escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    campaign = _run(nats_url, tenant, lambda c: c.create(model))
    _show(campaign)
    print(campaign.campaign_id)


@app.command()
def upload(
    campaign_id: CampaignArg,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".csv or .json(l)")],
    tenant: Tenant = "default",
    nats_url: NatsUrl = None,
) -> None:
    """Stream a contact file to the campaign, with a progress bar; bad rows by line."""
    size = file.stat().st_size
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
               TextColumn("{task.fields[totals]}"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(file.name, total=size, totals="")

        def on_chunk(sent: int, r: api.UploadReport) -> None:
            totals = f"loaded {r.loaded:,} merged {r.merged:,} dnc {r.dnc:,} bad {r.rejected:,}"
            bar.update(task, completed=sent, totals=totals)

        report = _run(nats_url, tenant, lambda c: c.upload_file(campaign_id, file, on_chunk))
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
        campaign_id: CampaignArg, tenant: Tenant = "default", nats_url: NatsUrl = None
    ) -> None:
        _show(_run(nats_url, tenant, lambda c: c.move(verb, campaign_id)))

    command.__doc__ = f"{verb.capitalize()} the campaign."
    return command


for _verb in ("start", "pause", "resume", "cancel"):
    app.command(_verb)(_move(_verb))


def _status_table(p: api.Progress) -> Table:
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
    tenant: Tenant = "default",
    nats_url: NatsUrl = None,
) -> None:
    """Live counts by contact state and attempt outcome."""
    if not watch:
        console.print(_status_table(_run(nats_url, tenant, lambda c: c.progress(campaign_id))))
        return

    async def follow(c: CampaignClient) -> None:
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                p = await c.progress(campaign_id)
                live.update(_status_table(p))
                if p.status in DONE:
                    return
                await asyncio.sleep(1.0)

    try:
        _run(nats_url, tenant, follow)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def report(
    campaign_id: CampaignArg,
    out: Annotated[Path | None, typer.Option(help="CSV file; default: standard output.")] = None,
    tenant: Tenant = "default",
    nats_url: NatsUrl = None,
) -> None:
    """The final report per contact (attempts, outcome, duration, recording id) as CSV."""

    async def write(c: CampaignClient) -> int:
        sink = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
        try:
            writer = csv.writer(sink)
            writer.writerow(api.REPORT_COLUMNS)
            n = 0
            async for row in c.report(campaign_id):
                writer.writerow(api.report_cells(row))  # formula injection escaped
                n += 1
            return n
        finally:
            if out:
                sink.close()

    n = _run(nats_url, tenant, write)
    if out:
        console.print(f"wrote {n:,} contacts to {out}")


@dnc_app.command("add")
def dnc_add(
    numbers: Annotated[list[str], typer.Argument(help="Numbers (with +country code).")],
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's list.")] = None,
    tenant: Tenant = "default",
    nats_url: NatsUrl = None,
) -> None:
    """Add numbers to the tenant's (or a campaign's) do-not-call list."""
    n = _run(nats_url, tenant, lambda c: c.dnc("add", numbers, campaign))
    console.print(f"added {n}")


@dnc_app.command("remove")
def dnc_remove(
    numbers: Annotated[list[str], typer.Argument(help="Numbers (with +country code).")],
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's list.")] = None,
    tenant: Tenant = "default",
    nats_url: NatsUrl = None,
) -> None:
    """Remove numbers from a do-not-call list."""
    n = _run(nats_url, tenant, lambda c: c.dnc("remove", numbers, campaign))
    console.print(f"removed {n}")
