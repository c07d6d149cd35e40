"""The REST edge as the command sees it: one client, one way to fail.

Every failure ends the command with one line on standard error and exit status 1:
the edge unreachable (or silent) within ``--timeout``, or the edge's own error
(``503 owner_unavailable`` when NATS or the owning service is down, ``401``,
``404``, a ``422`` naming the field).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

DEFAULT_URL = "http://127.0.0.1:8086"
DEV_ADMIN_TOKEN = "dev-secret"  # noqa: S105 - the development placeholder the dev edge accepts

err_console = Console(stderr=True, highlight=False)

Url = Annotated[str, typer.Option("--url", envvar="VB_EDGE_URL", help="The edge's base URL.")]
AdminToken = Annotated[
    str,
    typer.Option(
        "--admin-token", envvar="VB_EDGE_ADMIN_TOKEN", help="Operator token.", show_default=False
    ),
]
ApiKey = Annotated[
    str,
    typer.Option(
        "--api-key",
        envvar="VB_API_KEY",
        help="The tenant's API key (vb_<id>_<secret>); its tenant is the one acted for.",
        show_default=False,
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout", envvar="VB_CLI_TIMEOUT", help="Seconds to wait for the edge.", min=0.1
    ),
]


def fail(message: str) -> typer.Exit:
    """Print one line on standard error; the caller raises the returned exit (status 1)."""
    err_console.print(f"[red]{escape(message)}[/]", soft_wrap=True)
    return typer.Exit(1)


def error_line(response: httpx.Response) -> str:
    """``<status> <code>: <message>`` from the edge's one error shape (or the raw text)."""
    try:
        error = response.json()["error"]
        fields = "; ".join(
            f"{f['field']}: {f['message']}" for f in error.get("fields") or [] if "field" in f
        )
        text = f"{error.get('code', 'error')}: {error['message']}"
        return f"{response.status_code} {text}" + (f" ({fields})" if fields else "")
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code}: {response.text[:200]}"


@dataclass(frozen=True, slots=True)
class Edge:
    """The edge's ``/api/v1`` with one credential.

    Args:
        url: the edge's base URL (without ``/api/v1``).
        token: an API key or the operator token, sent as a bearer token.
        timeout_s: bound on connecting and on each read.
    """

    url: str
    token: str
    timeout_s: float = 10.0

    def _silent(self) -> typer.Exit:
        return fail(f"the edge at {self.url} did not answer within {self.timeout_s:g} s")

    def _endpoint(self, path: str) -> str:
        return f"{self.url.rstrip('/')}/api/v1{path}"

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        ok_404: bool = False,
    ) -> httpx.Response:
        """One request; exits with one line on any failure (a 404 is returned if ``ok_404``)."""
        try:
            response = httpx.request(
                method,
                self._endpoint(path),
                headers=self._headers(headers),
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None},
                content=content,
                timeout=self.timeout_s,
            )
        except httpx.TimeoutException:
            raise fail(
                f"the edge at {self.url} did not answer within {self.timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach the edge at {self.url}: {type(exc).__name__}") from None
        if response.status_code == 404 and ok_404:
            return response
        if response.status_code >= 400:
            raise fail(error_line(response))
        return response

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """A request whose answer is JSON (``None`` for an empty body)."""
        response = self.request(method, path, json=body, **kw)
        return response.json() if response.content else None

    @contextmanager
    def stream(self, path: str, read_timeout_s: float | None) -> Iterator[httpx.Response]:
        """A streamed GET (the live feed): connecting is bounded by the timeout, reading by
        ``read_timeout_s`` (``None``: wait for as long as the stream stays open)."""
        timeout = httpx.Timeout(self.timeout_s, read=read_timeout_s)
        try:
            with httpx.stream(
                "GET", self._endpoint(path), headers=self._headers(), timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise fail(error_line(response))
                yield response
        except httpx.TimeoutException:
            raise fail(
                f"the edge at {self.url} did not answer within {self.timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise fail(f"lost the edge at {self.url}: {type(exc).__name__}") from None
