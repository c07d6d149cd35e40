"""A tenant's side of the REST API for commands: the edge's URL and an API key.

Used by ``voicebus replay`` and ``voicebus eval``; only HTTP, so the commands run
against any deployment the tenant can reach.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer

DEFAULT_URL = "http://127.0.0.1:8086"
SIMULATION_TIMEOUT = httpx.Timeout(900.0, connect=10.0)
"""A replay or a scenario waits for every turn of the agent's LLM (the edge bounds it)."""

Url = Annotated[str, typer.Option("--url", envvar="VB_EDGE_URL", help="The edge's base URL.")]
ApiKey = Annotated[
    str,
    typer.Option("--api-key", envvar="VB_API_KEY", help="The tenant's API key.",
                 show_default=False),
]  # fmt: skip


class EdgeError(Exception):
    """The edge refused a request or could not be reached; the message says why."""


def error_message(response: httpx.Response) -> str:
    """``<status>: <the edge's error message>``."""
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    return f"{response.status_code}: {message}"


async def post(
    client: httpx.AsyncClient, url: str, api_key: str, path: str, body: Any
) -> dict[str, Any]:
    """``POST /api/v1<path>`` with the key; the JSON reply.

    Raises:
        EdgeError: the edge answered with an error, or could not be reached.
    """
    try:
        response = await client.post(
            f"{url.rstrip('/')}/api/v1{path}",
            headers={"Authorization": f"Bearer {api_key}"},
            json=body,
        )
    except httpx.HTTPError as exc:
        raise EdgeError(f"cannot reach the edge at {url}: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise EdgeError(error_message(response))
    found = response.json()
    if not isinstance(found, dict):
        raise EdgeError(f"{response.status_code}: the edge's reply is not an object")
    return found
