"""What every cloud engine shares: connecting (SSRF-checked), errors, endpoints, keys."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from voicebus.engines.base import EngineError, error_for_status
from voicebus.engines.urls import check_resolved

MAX_FRAME: int = 4 * 1024 * 1024


def endpoint_id(name: str, base_url: str, api_key: str | None) -> str:
    """A breaker key: the engine, where it connects and which key (as a short digest)."""
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()[:12]
    return f"{name}@{base_url}#{digest}"


def ws_url(base_url: str) -> str:
    """``http(s)://`` base URLs as ``ws(s)://`` (vendors document both forms)."""
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :]
    if base_url.startswith("http://"):
        return "ws://" + base_url[len("http://") :]
    return base_url


def http_url(base_url: str) -> str:
    """``ws(s)://`` base URLs as ``http(s)://``."""
    if base_url.startswith("wss://"):
        return "https://" + base_url[len("wss://") :]
    if base_url.startswith("ws://"):
        return "http://" + base_url[len("ws://") :]
    return base_url


def require_key(engine: str, api_key: str | None, *, required: bool = True) -> None:
    """Refuse to build a cloud engine with no key (a clear error, not a 401 on a call)."""
    if required and not api_key:
        raise EngineError(
            f"{engine}: no API key: set VB_ENGINE_KEY_{engine.upper()} (or the vendor's variable)",
            kind="config",
        )


async def open_ws(
    engine: str,
    url: str,
    headers: dict[str, str],
    *,
    timeout_s: float,
    allow_private: bool,
) -> ClientConnection:
    """Connect a WebSocket, with vendor refusals as :class:`EngineError`.

    Raises:
        EngineError: the host is refused, unreachable, or the vendor refused (401 → auth).
    """
    await check_resolved(engine, url, allow_private=allow_private)
    try:
        return await connect(
            url,
            additional_headers=headers,
            open_timeout=timeout_s,
            compression=None,
            max_size=MAX_FRAME,
            ping_interval=None,
        )
    except InvalidStatus as exc:
        response = exc.response
        detail = response.body.decode("utf-8", "replace")[:200] if response.body else ""
        raise error_for_status(engine, response.status_code, detail) from None
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        raise EngineError(
            f"{engine}: cannot connect to the vendor ({type(exc).__name__})",
            retryable=True,
            kind="unavailable",
        ) from None


def parse_json(engine: str, raw: str | bytes) -> dict[str, Any]:
    """A vendor's JSON message, or a protocol error (malformed frame)."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise EngineError(
            f"{engine}: the vendor sent a malformed message", retryable=True, kind="protocol"
        )
    return value


async def raise_for_response(engine: str, response: httpx.Response) -> None:
    """Turn an HTTP error answer into the one error for its status."""
    if response.status_code < 400:
        return
    body = (await response.aread()).decode("utf-8", "replace")
    raise error_for_status(engine, response.status_code, _detail(body))


def _detail(body: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body[:200]
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])[:200]
        if isinstance(error, str):
            return error[:200]
        for key in ("message", "err_msg", "detail"):
            if key in parsed:
                return str(parsed[key])[:200]
    return body[:200]


def transport_error(engine: str, exc: httpx.HTTPError) -> EngineError:
    """An httpx failure as an engine error."""
    if isinstance(exc, httpx.TimeoutException):
        return EngineError(f"{engine}: the vendor timed out", retryable=True, kind="timeout")
    return EngineError(
        f"{engine}: connection failed ({type(exc).__name__})", retryable=True, kind="closed"
    )
