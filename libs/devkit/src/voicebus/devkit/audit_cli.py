"""``voicebus audit``: dead letters, and the hash chains of calls' records.

``dead-letters`` reads ``VB_DEAD_LETTERS`` directly (it is bus infrastructure, not
a service's data); ``verify`` asks the audit service, which owns the rows, to
recompute chains (``vb.rpc.audit.chains.verify``). Both talk to NATS
(``--nats-url``; by default the running ``voicebus dev`` stack's).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voicebus.contracts import deadletters as dl
from voicebus.contracts import streams, subjects
from voicebus.contracts.chains import CHAINS_VERIFY, ChainReport, ChainResult, VerifyChains
from voicebus.devkit.stack import nats_url_or_dev

T = TypeVar("T")
app = typer.Typer(help="Audit: dead letters and the evidence chains of calls.",
                  no_args_is_help=True)  # fmt: skip
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

NatsUrl = Annotated[
    str | None, typer.Option(envvar="VB_NATS_URL", help="NATS; default: the dev stack's.")
]
VERIFY_TIMEOUT_S = 60.0


def _run(url: str | None, work: Callable[..., Awaitable[T]]) -> T:
    import nats  # imported here: `voicebus --help` stays fast

    async def main() -> T:
        nc = await nats.connect(nats_url_or_dev(url), connect_timeout=5)
        try:
            return await work(nc)
        finally:
            await nc.close()

    try:
        return asyncio.run(main())
    except (OSError, nats.errors.Error) as exc:
        err.print(f"[red]cannot reach NATS: {escape(str(exc))}[/]")
        raise typer.Exit(1) from None


async def read_dead_letters(nc: object, subject: str, limit: int) -> list[dl.DeadLetter]:
    """The last ``limit`` dead letters on ``subject`` (a ``vb.dlq`` filter), oldest first."""
    from nats.aio.client import Client
    from nats.js.api import ConsumerConfig, DeliverPolicy

    assert isinstance(nc, Client)
    js = nc.jetstream()
    info = await js.stream_info(streams.DEAD_LETTERS.name)
    if not info.state.messages:
        return []
    sub = await js.subscribe(
        subject, ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    found: list[dl.DeadLetter] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except TimeoutError:
                break
            found.append(dl.read(msg.metadata.sequence.stream, msg.headers or {}, len(msg.data)))
            found = found[-limit:]
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return found


@app.command("dead-letters")
def dead_letters(
    service: Annotated[str | None, typer.Option(help="Only this service's.")] = None,
    reason: Annotated[
        str | None,
        typer.Option(
            help="Only this reason (invalid_message, storage_rejected, "
            "max_deliveries, handler_failed)."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show the last N.")] = 50,
    show: Annotated[
        int | None, typer.Option(help="Print one dead letter (by sequence): headers and data.")
    ] = None,
    nats_url: NatsUrl = None,
) -> None:
    """Messages consumers could not handle, with the reason, from VB_DEAD_LETTERS."""
    if show is not None:
        _run(nats_url, lambda nc: _show(nc, show))
        return
    subject = f"{subjects.ROOT}.dlq.{service or '*'}.{reason or '*'}"
    letters = _run(nats_url, lambda nc: read_dead_letters(nc, subject, limit))
    if not letters:
        console.print("no dead letters")
        return
    table = Table(title=f"{len(letters)} dead letter(s)", title_justify="left")
    for column in ("seq", "when", "service", "reason", "original subject", "detail", "bytes"):
        table.add_column(column)
    for d in letters:
        when = d.dead_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if d.dead_at else "-"
        table.add_row(str(d.sequence), when, d.service, d.reason.value,
                      escape(d.original_subject), escape(d.detail), str(d.size))  # fmt: skip
    console.print(table)


async def _show(nc: object, sequence: int) -> None:
    from nats.aio.client import Client
    from nats.js.errors import NotFoundError

    assert isinstance(nc, Client)
    try:
        msg = await nc.jetstream().get_msg(streams.DEAD_LETTERS.name, sequence)
    except NotFoundError:
        err.print(f"[red]no dead letter {sequence}[/]")
        raise typer.Exit(1) from None
    for key, value in sorted((msg.headers or {}).items()):
        console.print(f"{escape(key)}: {escape(value)}")
    console.print()
    console.print(escape((msg.data or b"").decode("utf-8", errors="replace")), soft_wrap=True)


def _line(result: ChainResult) -> str:
    if result.ok:
        extra = f" ({result.unchained} stored before chaining)" if result.unchained else ""
        if result.erased:
            extra += f" ({result.erased} erased, taken as stored)"
        head = result.head[:16]
        return f"[green]ok[/]     {result.call_id}  {result.length} links, head {head}{extra}"
    where = f"link {result.broken_at}" if result.broken_at is not None else "head"
    event = f" (event {result.event_id})" if result.event_id else ""
    return f"[red]BROKEN[/] {result.call_id}  at {where}{event}: {escape(result.problem or '')}"


@app.command("verify")
def verify(
    call_id: Annotated[str | None, typer.Argument(help="The call to verify.")] = None,
    tenant: Annotated[str, typer.Option(envvar="VB_TENANT", help="Tenant id.")] = "default",
    since: Annotated[
        str | None,
        typer.Option(
            help="Verify every call of the tenant with events stored since then "
            "(ISO 8601, e.g. 2026-11-21 or 2026-11-21T10:00:00Z; UTC when no offset)."
        ),
    ] = None,
    nats_url: NatsUrl = None,
) -> None:
    """Recompute calls' hash chains and report the first broken link (exit 1 if any)."""
    if (call_id is None) == (since is None):
        err.print("[red]give a call id or --since[/]")
        raise typer.Exit(2)
    when: datetime | None = None
    if since is not None:
        try:
            parsed = datetime.fromisoformat(since)
        except ValueError:
            err.print(f"[red]--since {escape(since)!r} is not an ISO 8601 date or time[/]")
            raise typer.Exit(2) from None
        when = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    async def ask(nc: object) -> list[ChainResult]:
        from nats.aio.client import Client

        from voicebus.runtime.rpc import RpcClient, RpcFault, TenantSigner

        assert isinstance(nc, Client)
        # Audit answers a tenant's chains only when the edge's key signed the request.
        key = os.environ.get("VB_RPC_TENANT_SIGNING_KEY")
        signer = TenantSigner(key) if key else None
        rpc = RpcClient(nc, timeout_s=VERIFY_TIMEOUT_S, signer=signer)
        results: list[ChainResult] = []
        after: str | None = None
        while True:
            request = VerifyChains(tenant_id=tenant, call_id=call_id, since=when, after=after)
            try:
                reply = await rpc.ask(CHAINS_VERIFY, request, ChainReport)
            except RpcFault as fault:
                err.print(f"[red]{fault.status} {fault.code}: {escape(fault.message)}[/]")
                raise typer.Exit(1) from None
            results += reply.results
            if reply.next_after is None:
                return results
            after = reply.next_after

    results = _run(nats_url, ask)
    for result in results:
        console.print(_line(result), soft_wrap=True)
    broken = [r for r in results if not r.ok]
    console.print(f"{len(results)} call(s) verified, {len(broken)} broken")
    if broken:
        raise typer.Exit(1)
