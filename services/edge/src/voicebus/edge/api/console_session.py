"""Console sessions: a signed cookie naming an API key, and its CSRF token. Pure.

A person logs in to the console with an API key once; the edge answers with a
cookie holding ``<key id>.<expires>.<csrf>.<mac>``, the HMAC-SHA256 of the
first three fields under ``VB_EDGE_SESSION_SECRET``. The key's secret is not in
it: the cookie names the key, and the key's row is read on every request, so a
revoked key's sessions are refused at once on every edge instance. A session
opened with the operator token names :data:`OPERATOR_SESSION` instead of a key
id; its MAC also covers a digest of the operator token, so changing the token
ends every operator session.

CSRF: the cookie is ``SameSite=Strict`` and ``HttpOnly``; a state-changing
request carried by the cookie must also send the session's CSRF token in the
``X-CSRF-Token`` header (a double submit: the token is readable by the page from
a second, non-HttpOnly cookie, and must equal the one signed into the session).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

SESSION_COOKIE: Final = "vb_session"
CSRF_COOKIE: Final = "vb_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
OPERATOR_SESSION: Final = "operator"
"""The key id an operator session names (never a key id: those are 12 hex digits)."""
_SHAPE: Final = re.compile(
    r"^([0-9a-f]{12}|operator)\.([0-9]{1,12})\.([A-Za-z0-9_-]{32})\.([0-9a-f]{64})$"
)


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A verified session cookie.

    Attributes:
        key_id: the API key the person logged in with.
        expires_at: unix seconds after which the cookie is refused.
        csrf: the token state-changing requests must repeat in ``X-CSRF-Token``.
    """

    key_id: str
    expires_at: int
    csrf: str


class SessionSigner:
    """Issues and verifies session cookies.

    Args:
        secret: the HMAC key (``VB_EDGE_SESSION_SECRET``).
        ttl_s: how long a session lasts.
        operator_token: the operator token; operator sessions are bound to it.
    """

    def __init__(self, secret: str, ttl_s: int, operator_token: str = "") -> None:
        self._key = hashlib.sha256(b"voicebus-console-session\0" + secret.encode()).digest()
        self._operator = hashlib.sha256(b"voicebus-operator\0" + operator_token.encode()).digest()
        self.ttl_s = ttl_s

    def _mac(self, body: str) -> str:
        if body.startswith(OPERATOR_SESSION + "."):
            body = f"{body}.{self._operator.hex()}"
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def issue(self, key_id: str, now: float) -> tuple[str, ConsoleSession]:
        """A new cookie value for ``key_id`` and the session it holds."""
        session = ConsoleSession(key_id, int(now) + self.ttl_s, secrets.token_urlsafe(24))
        body = f"{session.key_id}.{session.expires_at}.{session.csrf}"
        return f"{body}.{self._mac(body)}", session

    def verify(self, cookie: str, now: float) -> ConsoleSession | None:
        """The session of a well-formed, authentic, unexpired cookie; else None."""
        match = _SHAPE.fullmatch(cookie)
        if match is None:
            return None
        key_id, expires, csrf, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(f"{key_id}.{expires}.{csrf}")):
            return None
        if int(expires) <= now:
            return None
        return ConsoleSession(key_id, int(expires), csrf)


def csrf_ok(session: ConsoleSession, method: str, header: str | None) -> bool:
    """Whether a request carried by ``session`` passes the CSRF check."""
    if method.upper() in SAFE_METHODS:
        return True
    return header is not None and hmac.compare_digest(header.encode(), session.csrf.encode())
