"""The ``voicebus`` command: the operator's commands, plus the developer's kit when installed."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from voicebus.cli.agents import app as agent_app
from voicebus.cli.calls import calls_app, events_app
from voicebus.cli.campaigns import app as campaign_app
from voicebus.cli.evals import eval_command
from voicebus.cli.replay import replay
from voicebus.cli.tenants import key_app, tenant_app

EXTENSIONS = "voicebus.cli"
"""Entry-point group of a package that extends the command (the developer's kit): its entry
is a Typer app built on :func:`operator_app`, which then runs instead."""


def operator_app() -> typer.Typer:
    """A fresh ``voicebus`` app with the operator's commands, all over the REST edge."""
    app = typer.Typer(
        help="voicebus: AI voice agents on phone calls, over NATS.", no_args_is_help=True
    )
    app.add_typer(tenant_app, name="tenant")
    app.add_typer(key_app, name="key")
    app.add_typer(agent_app, name="agent")
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(calls_app, name="calls")
    app.add_typer(events_app, name="events")
    app.command("replay")(replay)
    app.command("eval")(eval_command)
    return app


def main() -> None:
    """Entry point of the ``voicebus`` command."""
    extended = sorted(entry_points(group=EXTENSIONS), key=lambda ep: ep.name)
    app: typer.Typer = extended[0].load() if extended else operator_app()
    app()


if __name__ == "__main__":
    main()
