"""``voicebus keys rotate``: re-encrypt every stored secret with the newest key.

Rotating a key: put the new key first in ``VB_EDGE_CREDENTIALS_KEY`` and
``VB_ORCHESTRATOR_SECRETS_KEY`` (the old ones after it) on every instance, restart,
run ``voicebus keys rotate``; once it reports nothing unreadable, remove the old keys.
Each owner re-encrypts its own rows (``vb.rpc.<service>.*.rotate``): this command
never sees a key or a secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from voicebus.contracts.keys import ROTATE_SUBJECTS, KeysRotated, RotateKeys
from voicebus.devkit.stack import nats_url_or_dev

app = typer.Typer(help="Encryption keys of stored secrets.", no_args_is_help=True)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)
ROTATE_TIMEOUT_S = 30.0


async def rotate_all(
    nc: object, dry_run: bool, owners: Mapping[str, str] = ROTATE_SUBJECTS
) -> dict[str, KeysRotated | str]:
    """Each owner's report (``owners``: service → subject), or why it could not rotate."""
    from voicebus.runtime.rpc import RpcClient, RpcFault

    client = RpcClient(nc, timeout_s=ROTATE_TIMEOUT_S)  # type: ignore[arg-type]
    found: dict[str, KeysRotated | str] = {}
    for service, subject in owners.items():
        try:
            found[service] = await client.ask(
                subject, RotateKeys(dry_run=dry_run), KeysRotated, idempotent=True
            )
        except RpcFault as fault:
            found[service] = f"{fault.status} {fault.code}: {fault.message}"
    return found


@app.command("rotate")
def rotate(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only; change nothing.")] = False,
    nats_url: Annotated[
        str | None, typer.Option(envvar="VB_NATS_URL", help="NATS; default: the dev stack's.")
    ] = None,
) -> None:
    """Re-encrypt provider credentials (edge) and tool secrets (orchestrator) with the
    first configured key."""
    import nats

    async def main() -> dict[str, KeysRotated | str]:
        nc = await nats.connect(nats_url_or_dev(nats_url), connect_timeout=5)
        try:
            return await rotate_all(nc, dry_run)
        finally:
            await nc.close()

    try:
        reports = asyncio.run(main())
    except (OSError, nats.errors.Error) as exc:
        err.print(f"[red]cannot reach NATS: {escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    failed = False
    for service, report in reports.items():
        if isinstance(report, str):
            failed = True
            console.print(f"[red]{service}: {escape(report)}[/]")
            continue
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        line = f"{service}: {verb} {report.rotated}, unreadable {report.unreadable}"
        console.print(f"{line} ({report.keys} key(s) configured)")
        failed = failed or report.unreadable > 0
    if failed:
        err.print("[red]not every secret is readable with the configured keys: keep old keys[/]")
        raise typer.Exit(1)
