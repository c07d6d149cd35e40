"""The ``voicebus`` command with the developer's kit: the operator's commands (from the
``voicebus-cli`` package) plus ``dev``, ``demo``, ``call``, ``bench`` and the other tools
that start or reach the bus and the database directly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voicebus.cli.main import operator_app
from voicebus.contracts.errors import InvalidTokenError
from voicebus.devkit.audit_cli import app as audit_app
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.keys_cli import app as keys_app
from voicebus.devkit.secrets_cli import app as secrets_app
from voicebus.devkit.stack import SERVICES, DevStack, StackError, color_for, read_state
from voicebus.devkit.tail import TailFilter, tail

app = operator_app()
bus_app = typer.Typer(
    help="Watch the bus itself (development: needs NATS, and sees every tenant).",
    no_args_is_help=True,
)
app.add_typer(bus_app, name="bus")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(secrets_app, name="secrets")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

DATA_DIR = Path("var") / "dev"
ASYNCAPI_PATH = Path("docs") / "asyncapi.yaml"
BENCH_RESULTS = Path("bench") / "results"
NatsUrl = Annotated[
    str | None, typer.Option(envvar="VB_NATS_URL", help="Use this NATS instead of an embedded one.")
]


def _prefix(name: str, line: str) -> str:
    return f"[{color_for(name)}]{name:<12}│[/] {escape(line)}"


class _RichOut:
    """A file-like sink that renders rich markup, for service log lines."""

    def write(self, text: str) -> int:
        if text.strip():
            console.print(text.rstrip("\n"), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        """Nothing to flush: rich writes through."""


def _ready_table(stack: DevStack) -> Table:
    table = Table(title="voicebus dev: all services ready", title_justify="left")
    table.add_column("service")
    table.add_column("pid", justify="right")
    table.add_column("http")
    table.add_column("ready after", justify="right")
    for svc in stack.services:
        pid = str(svc.process.pid) if svc.process else "-"
        after = f"{svc.ready_after_s:.1f} s" if svc.ready_after_s is not None else "-"
        table.add_row(svc.name, pid, svc.url, after)
    table.add_row("nats", "", stack.nats_url or "", "")
    table.add_row("postgres", "", _hide_password(stack.database_url or ""), "")
    if stack.llm_url:
        table.add_row("local LLM", "", stack.llm_url, "")
    return table


def _hide_password(url: str) -> str:
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, userinfo = head.partition("//")
    return f"{scheme}//{userinfo.split(':', 1)[0]}:***@{tail}"


async def _run_dev(stack: DevStack) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        await stack.start()
        console.print(_ready_table(stack))
        edge = next((s for s in stack.services if s.name == "edge"), None)
        if edge is not None:
            console.print(f"browser page: {edge.url}/browser · REST API: {edge.url}/api/v1/docs")
        console.print("Ctrl-C stops everything.")
        while not stop.is_set():
            if stack.exited():
                names = ", ".join(s.name for s in stack.exited())
                err_console.print(f"[red]service exited unexpectedly: {names}[/]")
                code = 1
                break
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                continue
    except StackError as err:
        err_console.print(f"[red]{escape(str(err))}[/]")
        code = 1
    finally:
        console.print("stopping…")
        await stack.stop()
        console.print("stopped.")
    return code


@app.command()
def dev(
    nats_url: NatsUrl = None,
    database_url: Annotated[
        str | None,
        typer.Option(envvar="VB_DATABASE_URL", help="Use this PostgreSQL instead of embedded."),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Embedded servers' data.")] = DATA_DIR,
    service: Annotated[
        list[str] | None, typer.Option("--service", "-s", help="Run only these services.")
    ] = None,
) -> None:
    """Run NATS, PostgreSQL and all seven services on this machine until Ctrl-C."""
    stack = DevStack(
        data_dir,
        nats_url=nats_url,
        database_url=database_url,
        services=service or SERVICES,
        out=_RichOut(),  # type: ignore[arg-type]  # only write/flush are used
        color=_prefix,
        well_known_ports=True,
    )
    raise typer.Exit(asyncio.run(_run_dev(stack)))


def _default_nats_url(data_dir: Path) -> str:
    state = read_state(data_dir)
    if state and isinstance(state.get("nats_url"), str):
        return str(state["nats_url"])
    return "nats://127.0.0.1:4222"


@bus_app.command("tail")
def bus_tail(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    call: Annotated[str | None, typer.Option(help="Only this call id.")] = None,
    type_glob: Annotated[
        str | None, typer.Option("--type", help="Event type glob, e.g. 'call.*'.")
    ] = None,
    from_start: Annotated[bool, typer.Option(help="Replay from the stream's start.")] = False,
    count: Annotated[int | None, typer.Option(help="Exit after this many events.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Exit after this many seconds.")] = None,
    nats_url: NatsUrl = None,
    data_dir: Annotated[Path, typer.Option(help="Where `voicebus dev` keeps state.")] = DATA_DIR,
) -> None:
    """Print call events from VB_EVENTS, one line each (from now, or --from-start)."""
    try:
        flt = TailFilter(tenant, call, type_glob, from_start)
        _ = flt.subject
    except ValueError as err:
        err_console.print(f"[red]{escape(str(err))}[/]")
        raise typer.Exit(2) from None
    url = nats_url or _default_nats_url(data_dir)

    def emit(line: str) -> None:
        print(line, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(url, flt, emit, count=count, timeout=timeout))


def _stack_url(data_dir: Path, service: str) -> str | None:
    state = read_state(data_dir)
    services = state.get("services") if state else None
    url = services.get(service) if isinstance(services, dict) else None
    return url if isinstance(url, str) else None


def _context(pairs: list[str]) -> dict[str, str]:
    context: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--context")
        context[name] = value
    return context


@app.command("call")
def call_cmd(
    lines: Annotated[
        list[str] | None, typer.Argument(help="What the caller says, one line per argument.")
    ] = None,
    agent: Annotated[str, typer.Option(help="Agent id.")] = "demo",
    wav: Annotated[
        list[Path] | None,
        typer.Option(help="A WAV file to speak as a line (after the text lines); repeatable."),
    ] = None,
    gateway: Annotated[
        str | None, typer.Option(help="Gateway URL; default: the running `voicebus dev` stack's.")
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar="VB_GATEWAY_PUBLIC_URL",
            help="URL the gateway checks webhook signatures against; default: --gateway.",
        ),
    ] = None,
    auth_token: Annotated[
        str,
        typer.Option(
            envvar="VB_GATEWAY_TWILIO_AUTH_TOKEN",
            help="Twilio auth token the gateway checks signatures with.",
            show_default=False,
        ),
    ] = DEV_TWILIO_AUTH_TOKEN,
    barge_in_ms: Annotated[
        int | None,
        typer.Option(help="Speak each next line after this much of the agent's reply.", min=0),
    ] = None,
    context: Annotated[
        list[str] | None, typer.Option(help="Call context variable key=value; repeatable.")
    ] = None,
    save_audio: Annotated[
        Path | None, typer.Option(help="Write a stereo WAV: caller left, agent right.")
    ] = None,
    voice: Annotated[str, typer.Option(help="TTS engine for the caller ('tones': none).")] = (
        "hibari"
    ),
    quiet_ms: Annotated[
        float, typer.Option(help="Agent silence that ends its reply, in ms.", min=100)
    ] = 1500,
    reply_timeout: Annotated[float, typer.Option(help="Seconds to wait for each reply.")] = 30.0,
    timeout: Annotated[float, typer.Option(help="Bound on the whole call, in seconds.")] = 180.0,
    nats_url: Annotated[
        str | None,
        typer.Option(
            envvar="VB_NATS_URL", help="NATS to follow the call's events on; default: the stack's."
        ),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Where `voicebus dev` keeps state.")] = DATA_DIR,
    provider: Annotated[
        str, typer.Option(help="Provider protocol the caller speaks: twilio, plivo or vobiz.")
    ] = "twilio",
) -> None:
    """Place a simulated Twilio (or Plivo, Vobiz) call on the gateway; print a live transcript."""
    from voicebus.devkit.caller.script import INBOUND_CALLERS, CallScript, Line, run_call

    script_lines = [Line(text=t) for t in lines or []] + [Line(wav=w) for w in wav or []]
    if not script_lines:
        err_console.print("[red]nothing to say: give text lines or --wav files[/]")
        raise typer.Exit(2)
    gateway_url = gateway or _stack_url(data_dir, "gateway") or "http://127.0.0.1:8080"
    script = CallScript(
        gateway_url=gateway_url,
        auth_token=auth_token,
        agent=agent,
        lines=script_lines,
        context=_context(context or []),
        public_url=public_url,
        nats_url=nats_url or _default_nats_url(data_dir),
        voice=voice,
        barge_in_ms=barge_in_ms,
        quiet_ms=quiet_ms,
        reply_timeout=reply_timeout,
        timeout=timeout,
        save_audio=save_audio,
        provider=provider,
    )
    if provider not in INBOUND_CALLERS:
        err_console.print(f"[red]unknown provider {provider!r}: {', '.join(INBOUND_CALLERS)}[/]")
        raise typer.Exit(2)

    def emit(label: str, text: str, style: str) -> None:
        console.print(f"[{style}]{label:>9}[/] │ {escape(text)}", soft_wrap=True)

    with contextlib.suppress(KeyboardInterrupt):
        raise typer.Exit(asyncio.run(run_call(script, emit)))
    raise typer.Exit(130)


@app.command("asyncapi")
def asyncapi_cmd(
    path: Annotated[Path, typer.Argument(help="Where the document lives.")] = ASYNCAPI_PATH,
    check: Annotated[bool, typer.Option(help="Fail if the file is out of date.")] = False,
) -> None:
    """Write (or --check) the AsyncAPI 3 document generated from the contracts."""
    from voicebus.devkit import asyncapi

    if check:
        if not path.exists() or path.read_text(encoding="utf-8") != asyncapi.render_yaml():
            err_console.print(f"{path} is out of date: run `voicebus asyncapi`")
            raise typer.Exit(1)
        console.print(f"{path} is up to date")
        return
    asyncapi.write(path)
    console.print(f"wrote {path}")


@app.command("nats-config")
def nats_config_cmd(
    out: Annotated[Path, typer.Argument(help="Directory for accounts.conf and nats.env.")],
    tenant: Annotated[
        list[str] | None,
        typer.Option(
            help="A tenant's downstream user: TENANT, or TENANT=crm,bi for durable "
            "consumers tenant-TENANT-crm and tenant-TENANT-bi."
        ),
    ] = None,
    tls: Annotated[
        bool, typer.Option(help="Also a private CA and the servers' certificate (tls/).")
    ] = False,
    host: Annotated[
        list[str] | None,
        typer.Option(help="A name or address clients reach NATS by (with --tls); repeatable."),
    ] = None,
) -> None:
    """Write NATS users and permissions: one user per service, the operator, tenants.

    Include accounts.conf from the server's config; give each service VB_NATS_USER
    (its name) and VB_NATS_PASSWORD from nats.env. With --tls, also a private CA and a
    certificate for --host names, and tls.conf requiring TLS of every client.
    """
    from voicebus.devkit.nats_accounts import NatsAccounts, write

    tenants: dict[str, list[str]] = {}
    for spec in tenant or []:
        name, _, consumers = spec.partition("=")
        tenants[name] = [c for c in consumers.split(",") if c]
    try:
        conf, env = write(NatsAccounts.generate(tenants), out)
    except InvalidTokenError as exc:  # a tenant or consumer name that is not a subject token
        err_console.print(str(exc))
        raise typer.Exit(2) from None
    console.print(f"wrote {conf} and {env} (readable by you only)")
    if tls:
        from voicebus.devkit.nats_tls import write_tls

        try:
            files = write_tls(out / "tls", host or ["localhost", "127.0.0.1"])
        except ValueError as exc:
            err_console.print(str(exc))
            raise typer.Exit(2) from None
        block = out / "tls.conf"
        block.write_text(json.dumps({"tls": files.server_block()}, indent=2)[1:-1].strip() + "\n")
        console.print(
            f"wrote {files.ca}, {files.cert}, {files.key} and {block}: include tls.conf from "
            f"the server's config; give services VB_NATS_TLS_CA={files.ca} and tls:// URLs"
        )


@app.command("bench")
def bench_cmd(
    names: Annotated[
        list[str], typer.Argument(help="Benchmarks to run (e.g. bus-latency), or 'all'.")
    ],
    out: Annotated[Path, typer.Option(help="Where results are written.")] = BENCH_RESULTS,
    quick: Annotated[
        bool, typer.Option(help="Smallest configuration only (a smoke test, not figures).")
    ] = False,
    profile: Annotated[
        bool, typer.Option(help="Record a py-spy profile of the service under test.")
    ] = False,
) -> None:
    """Run benchmarks against their baselines; write <name>.json, .md and .png under --out."""
    from voicebus.devkit.bench.runner import run_named

    raise typer.Exit(asyncio.run(run_named(names, out, quick=quick, profile=profile)))


@app.command()
def demo(
    scripted: Annotated[
        bool, typer.Option(help="Use the scripted agent instead of the local LLM.")
    ] = False,
    data_dir: Annotated[Path, typer.Option(help="Embedded servers' data.")] = DATA_DIR,
) -> None:
    """Start everything, place the demo call, print transcript, recording and events, stop."""
    from voicebus.devkit.demo import DemoPlan, run_demo

    plan = DemoPlan(data_dir=data_dir, agent="demo-scripted" if scripted else "demo")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "demo.log"

    def emit(label: str, text: str, style: str) -> None:
        console.print(f"[{style}]{label:>9}[/] │ {escape(text)}", soft_wrap=True)

    def print_line(line: str) -> None:
        console.print(escape(line), soft_wrap=True, highlight=False)

    with log_path.open("w", encoding="utf-8") as log_sink:
        code = asyncio.run(run_demo(plan, emit, print_line, log_sink))
    console.print(f"service logs: {log_path}")
    raise typer.Exit(code)


def main() -> None:
    """Entry point of the ``voicebus`` command."""
    app()


if __name__ == "__main__":
    main()
