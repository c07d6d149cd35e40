"""``voicebus tenant`` and ``voicebus key``: the operator's side of the REST API.

They call the edge's ``/api/v1`` with the operator token, so they work on
any deployment the operator can reach, not only on ``voicebus dev``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from voicebus.cli.edge import DEFAULT_URL, DEV_ADMIN_TOKEN, Edge, Url
from voicebus.cli.edge import AdminToken as Token

tenant_app = typer.Typer(help="Tenants of the REST API (operator token).", no_args_is_help=True)
key_app = typer.Typer(help="API keys of a tenant (shown once, revocable).", no_args_is_help=True)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def _call(method: str, url: str, token: str, path: str, body: Any = None) -> Any:
    """One request to ``/api/v1`` with the operator token; exits 1 with one line on failure."""
    return Edge(url, token).json(method, path, body)


@tenant_app.command("create")
def tenant_create(
    tenant_id: str, name: str = "", url: Url = DEFAULT_URL, token: Token = DEV_ADMIN_TOKEN
) -> None:
    """Create a tenant."""
    tenant = _call(
        "POST", url, token, "/tenants", {"tenant_id": tenant_id, "name": name or tenant_id}
    )
    console.print(f"tenant {tenant['tenant_id']} created")


@tenant_app.command("list")
def tenant_list(url: Url = DEFAULT_URL, token: Token = DEV_ADMIN_TOKEN) -> None:
    """List tenants."""
    table = Table("tenant", "name", "created")
    for tenant in _call("GET", url, token, "/tenants"):
        table.add_row(tenant["tenant_id"], tenant["name"], tenant["created_at"])
    console.print(table)


@key_app.command("create")
def key_create(
    tenant_id: str,
    scope: Annotated[list[str], typer.Option(help="Repeat for each scope, e.g. calls:write.")],
    name: str = "cli",
    rate_limit: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    url: Url = DEFAULT_URL,
    token: Token = DEV_ADMIN_TOKEN,
) -> None:
    """Create an API key; its token is printed once, store it now."""
    body: dict[str, Any] = {"name": name, "scopes": scope}
    if rate_limit is not None:
        body["rate_limit_per_minute"] = rate_limit
    key = _call("POST", url, token, f"/tenants/{tenant_id}/keys", body)
    err_console.print(f"key {key['key_id']} for {tenant_id}; the token is shown only now:")
    print(key["token"], flush=True)  # stdout alone, for $(voicebus key create ...)


@key_app.command("list")
def key_list(tenant_id: str, url: Url = DEFAULT_URL, token: Token = DEV_ADMIN_TOKEN) -> None:
    """List a tenant's keys (never their secrets)."""
    table = Table("key", "name", "scopes", "per minute", "revoked")
    for key in _call("GET", url, token, f"/tenants/{tenant_id}/keys"):
        table.add_row(
            key["key_id"],
            key["name"],
            " ".join(key["scopes"]),
            str(key["rate_limit_per_minute"]),
            key["revoked_at"] or "",
        )
    console.print(table)


@key_app.command("revoke")
def key_revoke(
    tenant_id: str, key_id: str, url: Url = DEFAULT_URL, token: Token = DEV_ADMIN_TOKEN
) -> None:
    """Revoke a key: refused from now on."""
    _call("DELETE", url, token, f"/tenants/{tenant_id}/keys/{key_id}")
    console.print(f"key {key_id} revoked")
