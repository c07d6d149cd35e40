"""Bearer and console-session authentication, scopes and per-key rate limits of the REST edge.

Two kinds of bearer token: the operator's ``VB_EDGE_ADMIN_TOKEN`` (tenants
and their keys, no tenant data) and tenants' API keys ``vb_<key id>_<secret>``.
The console's session cookie (``console_session``) stands for the API key it was
opened with, checked the same way on every request, plus a CSRF token on writes.
A key's row is read on every request, so revoking it takes effect at once on
every instance; the argon2 check runs once per key and process (its result is
cached by a digest of the token).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from voicebus.edge.api.console_session import (
    CSRF_HEADER,
    OPERATOR_SESSION,
    SESSION_COOKIE,
    ConsoleSession,
    SessionSigner,
    csrf_ok,
)
from voicebus.edge.api.errors import ApiError
from voicebus.edge.api.ratelimit import ClientLimiter, KeyRateLimiter
from voicebus.edge.api.schemas import TenantIdPath
from voicebus.edge.api.shared_limits import SharedRateLimiter
from voicebus.edge.tenancy import keys
from voicebus.edge.tenancy.keys import Scope
from voicebus.edge.tenancy.store import TenantStore

log = logging.getLogger(__name__)

_BEARER: Final = HTTPBearer(auto_error=False, description="An API key, or the operator token.")
_CHALLENGE: Final = {"WWW-Authenticate": "Bearer"}
_CACHE_MAX: Final = 10_000
OPERATOR: Final = "operator"
FAILED_TRIES_PER_MINUTE: Final = 10
FAILED_PER_ADDRESS_PER_MINUTE: Final = 60


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling.

    Attributes:
        tenant_id: the key's tenant; None for the operator.
        key_id: the key's id; None for the operator.
        scopes: what the key may do.
    """

    tenant_id: str | None
    key_id: str | None
    scopes: frozenset[str]

    @property
    def operator(self) -> bool:
        """True for the operator token."""
        return self.tenant_id is None


@dataclass(frozen=True, slots=True)
class TenantPrincipal:
    """A caller acting for one tenant (a key's tenant)."""

    tenant_id: str
    key_id: str


def _too_many(per_minute: int) -> ApiError:
    return ApiError(
        429,
        "too_many_unauthenticated",
        f"more than {per_minute} requests without a valid key per minute from this address",
        headers={"Retry-After": "60"},
    )


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers=_CHALLENGE)


class Authenticator:
    """Turns a request's bearer token into a :class:`Principal`, counting it against limits.

    Args:
        store: the tenancy store.
        admin_token: the operator's token.
        operator_rate_limit: requests per minute of the operator token.
        limiter: per-key rate limiter.
        clients: counts requests without a valid key per client address.
        shared: per-key limits counted in NATS KV, the same on every instance; None:
            in this process's memory.
        sessions: signs and verifies the console's session cookies.
    """

    def __init__(
        self,
        store: TenantStore,
        admin_token: str,
        operator_rate_limit: int,
        limiter: KeyRateLimiter | None = None,
        clients: ClientLimiter | None = None,
        shared: SharedRateLimiter | None = None,
        sessions: SessionSigner | None = None,
    ) -> None:
        self._shared = shared
        self._clients = clients or ClientLimiter(FAILED_PER_ADDRESS_PER_MINUTE)
        # Without a configured secret, sessions are this process's alone.
        self.sessions = sessions or SessionSigner(
            secrets.token_urlsafe(32), ttl_s=8 * 3600, operator_token=admin_token
        )
        self._store = store
        self._admin = admin_token.encode()
        self._operator_rate = operator_rate_limit
        self._limiter = limiter or KeyRateLimiter()
        self._failures = KeyRateLimiter()
        self._verified: dict[str, str] = {}

    async def authenticate(self, token: str) -> Principal:
        """The principal of ``token``, after its rate limit.

        Raises:
            ApiError: 401 (unknown, malformed or revoked), 429 (rate limit), 503 (no database).
        """
        if hmac.compare_digest(token.encode(), self._admin):
            await self._count(OPERATOR, self._operator_rate)
            return Principal(tenant_id=None, key_id=None, scopes=frozenset(keys.ALL_SCOPES))
        parsed = keys.parse_token(token)
        if parsed is None:
            raise _unauthorized("malformed API key")
        key_id, secret = parsed
        if not self._store.bound:
            raise ApiError(503, "tenancy_unavailable", "API keys need the edge's database")
        key = await self._store.key(key_id)
        if key is None or key.revoked_at is not None:
            log.info("api key refused", extra={"key_id": key_id})
            raise _unauthorized("unknown or revoked API key")
        fingerprint = keys.fingerprint(token)
        if self._verified.get(fingerprint) != key_id:
            # Guessing a key's secret costs an argon2 check per try: a few tries a minute.
            if self._failures.exceeded(key_id, FAILED_TRIES_PER_MINUTE):
                raise ApiError(
                    429,
                    "too_many_failures",
                    "too many failed attempts with this key id",
                    headers={"Retry-After": "60"},
                )
            if not await asyncio.to_thread(keys.verify, key.secret_hash, secret):
                self._failures.hit(key_id, FAILED_TRIES_PER_MINUTE)
                log.info("api key refused", extra={"key_id": key_id})
                raise _unauthorized("unknown or revoked API key")
            if len(self._verified) >= _CACHE_MAX:
                self._verified.clear()
            self._verified[fingerprint] = key_id
        if key.tenant_disabled:
            raise ApiError(403, "tenant_disabled", "the tenant is disabled")
        await self._count(key_id, key.rate_limit_per_minute)
        return Principal(tenant_id=key.tenant_id, key_id=key_id, scopes=key.scopes)

    def _known(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self._admin) or (
            keys.fingerprint(token) in self._verified
        )

    def _unauthenticated(self, request: Request) -> None:
        if self._clients.hit(request) is not None:
            raise _too_many(self._clients.per_minute)

    async def authenticate_session(self, session: ConsoleSession) -> Principal:
        """The principal of a verified console session: its key, read now (revocation holds).

        Raises:
            ApiError: 401 (revoked or unknown key), 429 (rate limit), 503 (no database).
        """
        if session.key_id == OPERATOR_SESSION:  # the signer bound it to the operator token
            await self._count(OPERATOR, self._operator_rate)
            return Principal(tenant_id=None, key_id=None, scopes=frozenset(keys.ALL_SCOPES))
        if not self._store.bound:
            raise ApiError(503, "tenancy_unavailable", "sessions need the edge's database")
        key = await self._store.key(session.key_id)
        if key is None or key.revoked_at is not None:
            log.info("console session refused", extra={"key_id": session.key_id})
            raise _unauthorized("the session's API key is revoked; log in again")
        if key.tenant_disabled:
            raise ApiError(403, "tenant_disabled", "the tenant is disabled")
        await self._count(key.key_id, key.rate_limit_per_minute)
        return Principal(tenant_id=key.tenant_id, key_id=key.key_id, scopes=key.scopes)

    async def _count(self, key: str, per_minute: int) -> None:
        if self._shared is not None:
            wait = await self._shared.hit(key, per_minute)
        else:
            wait = self._limiter.hit(key, per_minute)
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"rate limit of {per_minute} requests per minute reached",
                headers={"Retry-After": KeyRateLimiter.retry_after(wait)},
            )

    # -- FastAPI dependencies ----------------------------------------------------

    def principal(self) -> Callable[..., Awaitable[Principal]]:
        """Dependency: any valid token."""

        async def dependency(
            request: Request,
            credentials: HTTPAuthorizationCredentials | None = Depends(_BEARER),  # noqa: B008
        ) -> Principal:
            cookie = request.cookies.get(SESSION_COOKIE)
            if credentials is None and cookie is not None:
                principal = await self._from_cookie(request, cookie)
            else:
                principal = await self._from_bearer(request, credentials)
            request.state.key_id = principal.key_id or OPERATOR
            return principal

        return dependency

    async def _from_bearer(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            self._unauthenticated(request)
            raise _unauthorized("send Authorization: Bearer <API key>")
        token = credentials.credentials
        if self._clients.exceeded(request) and not self._known(token):
            # Before any database lookup or argon2 check: this address has failed enough.
            raise _too_many(self._clients.per_minute)
        try:
            return await self.authenticate(token)
        except ApiError as err:
            if err.status == 401:
                self._unauthenticated(request)
            raise

    async def _from_cookie(self, request: Request, cookie: str) -> Principal:
        session = self.sessions.verify(cookie, time.time())
        if session is None:
            raise _unauthorized("the console session expired or is invalid; log in again")
        if not csrf_ok(session, request.method, request.headers.get(CSRF_HEADER)):
            raise ApiError(403, "csrf_failed", f"send the session's {CSRF_HEADER} header")
        return await self.authenticate_session(session)

    def tenant(self, scope: Scope) -> Callable[..., Awaitable[TenantPrincipal]]:
        """Dependency: a tenant's key holding ``scope`` (or ``admin``)."""
        any_principal = self.principal()

        async def dependency(principal: Principal = Depends(any_principal)) -> TenantPrincipal:  # noqa: B008
            if principal.tenant_id is None or principal.key_id is None:
                raise ApiError(403, "tenant_key_required", "use one of the tenant's API keys")
            if not keys.allows(principal.scopes, scope):
                raise ApiError(403, "forbidden", f"the API key lacks the scope {scope.value!r}")
            return TenantPrincipal(principal.tenant_id, principal.key_id)

        return dependency

    def manager(self) -> Callable[..., Awaitable[Principal]]:
        """Dependency: the operator, or an ``admin`` key of the tenant named in the path.

        Another tenant's key sees a 404, as if the tenant did not exist.
        """
        any_principal = self.principal()

        async def dependency(
            tenant_id: TenantIdPath,
            principal: Principal = Depends(any_principal),  # noqa: B008
        ) -> Principal:
            if principal.operator:
                return principal
            if principal.tenant_id != tenant_id:
                raise ApiError(404, "not_found", f"no tenant {tenant_id!r}")
            if not keys.allows(principal.scopes, Scope.ADMIN):
                raise ApiError(403, "forbidden", "the API key lacks the scope 'admin'")
            return principal

        return dependency

    def operator(self) -> Callable[..., Awaitable[Principal]]:
        """Dependency: the operator token only."""
        any_principal = self.principal()

        async def dependency(principal: Principal = Depends(any_principal)) -> Principal:  # noqa: B008
            if not principal.operator:
                raise ApiError(403, "operator_only", "only the operator token may do this")
            return principal

        return dependency
