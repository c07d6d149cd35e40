"""``voicebus agent``: validate agent files, import them into the orchestrator, export them.

``validate`` is offline (the same checks the orchestrator runs on save).
``import`` and ``export`` talk to the orchestrator over NATS request/reply
(``--nats-url``; by default the running ``voicebus dev`` stack's), the same
subjects the REST edge forwards to. Importing is idempotent: an unchanged file
makes no new version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from voicebus.devkit.agent.files import agent_files, dump_agent, read_agent

if TYPE_CHECKING:
    from voicebus.runtime.rpc import RpcClient

T = TypeVar("T")
app = typer.Typer(help="Agents: validate, import and export agent files.", no_args_is_help=True)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

NatsUrl = Annotated[
    str | None, typer.Option(envvar="VB_NATS_URL", help="NATS; default: the dev stack's.")
]
Tenant = Annotated[str, typer.Option(envvar="VB_TENANT", help="Tenant id.")]
Paths = Annotated[list[Path], typer.Argument(help="Agent files or folders of them.")]


def _nats(url: str | None) -> str:
    if url:
        return url
    from voicebus.devkit.stack import read_state

    state = read_state(Path("var") / "dev")
    found = state.get("nats_url") if state else None
    return found if isinstance(found, str) else "nats://127.0.0.1:4222"


def _run(url: str | None, work: Callable[[RpcClient], Awaitable[T]]) -> T:
    import nats

    from voicebus.runtime.rpc import RpcClient, RpcFault

    async def main() -> T:
        nc = await nats.connect(_nats(url), connect_timeout=5)
        try:
            return await work(RpcClient(nc, timeout_s=10.0))
        finally:
            await nc.close()

    try:
        return asyncio.run(main())
    except RpcFault as exc:
        err.print(f"[red]{exc.status} {escape(exc.code)}: {escape(exc.message)}[/]")
        raise typer.Exit(1) from None
    except (OSError, nats.errors.Error) as exc:
        err.print(f"[red]cannot reach NATS: {escape(str(exc))}[/]")
        raise typer.Exit(1) from None


@app.command()
def validate(paths: Paths) -> None:
    """Check agent files offline; every problem is printed with its file and field."""
    bad = 0
    for path in agent_files(paths):
        found = read_agent(path)
        if found.problems:
            bad += 1
            for problem in found.problems:
                err.print(f"[red]{escape(str(path))}: {escape(str(problem))}[/]")
        else:
            console.print(f"{escape(str(path))}: ok")
    raise typer.Exit(1 if bad else 0)


@app.command("import")
def import_(
    paths: Paths,
    tenant: Tenant = "default",
    template: Annotated[
        bool, typer.Option(help="Operator: import as shared templates every tenant may use.")
    ] = False,
    nats_url: NatsUrl = None,
) -> None:
    """Import agent files (a new version only when a file changed)."""
    from voicebus.contracts.agents import api

    files = [read_agent(p) for p in agent_files(paths)]
    broken = [f for f in files if f.problems]
    for found in broken:
        for problem in found.problems:
            err.print(f"[red]{escape(str(found.path))}: {escape(str(problem))}[/]")
    if broken:
        raise typer.Exit(1)

    async def work(client: RpcClient) -> None:
        for found in files:
            request = api.ImportAgent(tenant_id=tenant, agent_id=found.agent_id,
                                      definition=found.raw, template=template)  # fmt: skip
            reply = await client.ask(api.AGENTS_IMPORT, request, api.AgentRecordReply,
                                     idempotent=True)  # fmt: skip
            assert reply.record is not None
            owner = "template" if reply.record.template else reply.record.tenant_id
            console.print(f"{found.agent_id}: version {reply.record.version} ({owner})")

    _run(nats_url, work)


@app.command()
def export(
    agent_id: Annotated[str, typer.Argument(help="Agent id.")],
    tenant: Tenant = "default",
    version: Annotated[int | None, typer.Option(help="A version; the current one by default.")] = (
        None
    ),
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    nats_url: NatsUrl = None,
) -> None:
    """Print (or --out) an agent's definition as YAML."""
    from voicebus.contracts.agents import api

    async def work(client: RpcClient) -> str:
        request = api.GetAgentVersion(tenant_id=tenant, agent_id=agent_id, version=version)
        reply = await client.ask(api.AGENTS_VERSION, request, api.AgentRecordReply)
        assert reply.record is not None
        return dump_agent(reply.record.definition)

    text = _run(nats_url, work)
    if out is None:
        console.print(escape(text), end="", soft_wrap=True)
    else:
        out.write_text(text, encoding="utf-8")
