"""``voicebus secrets``: make the secrets a production deployment needs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from voicebus.devkit.deploy_secrets import DEFAULT_DATABASE_HOST, env_file, generate, k8s_secret

app = typer.Typer(help="Secrets of a production deployment.", no_args_is_help=True)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file readable only by its owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


@app.command("init")
def init(
    env_path: Annotated[
        Path, typer.Option("--env-file", help="The .env docker compose reads.")
    ] = Path(".env"),
    k8s_path: Annotated[
        Path, typer.Option("--k8s-secret", help="The Kubernetes Secret manifest.")
    ] = Path("voicebus-secrets.yaml"),
    public_url: Annotated[
        str, typer.Option(help="Where providers reach the gateway (VB_GATEWAY_PUBLIC_URL).")
    ] = "http://localhost:8080",
    database_host: Annotated[
        str, typer.Option(help="host:port of PostgreSQL in the Secret's VB_DATABASE_URL.")
    ] = DEFAULT_DATABASE_HOST,
    force: Annotated[
        bool, typer.Option(help="Overwrite existing files (their encryption keys are lost).")
    ] = False,
) -> None:
    """Write a compose .env and a k8s Secret with a strong random value for every secret."""
    existing = [p for p in (env_path, k8s_path) if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        typer.echo(
            f"refusing to overwrite {names}: it may hold the keys that encrypt stored data "
            "(pass --force to replace it)",
            err=True,
        )
        raise typer.Exit(1)
    values = generate()
    _write_private(env_path, env_file(values, public_url))
    _write_private(k8s_path, k8s_secret(values, database_host=database_host))
    typer.echo(f"wrote {env_path} (docker compose) and {k8s_path} (kubectl apply -f), mode 0600")
