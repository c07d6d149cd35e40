"""Tenants, API keys and provider accounts in PostgreSQL. Every query names its tenant."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.edge.tenancy.credentials import CredentialCipher, fernet_keys
from voicebus.edge.tenancy.errors import (
    ConflictError,
    CredentialsError,
    NotFoundError,
    TenancyError,
)
from voicebus.edge.tenancy.keys import NewKey
from voicebus.edge.tenancy.tables import (
    API_KEYS,
    PROVIDER_ACCOUNTS,
    TENANT_LIMITS,
    TENANTS,
)
from voicebus.runtime.errors import ConfigurationError
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant."""

    tenant_id: str
    name: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key (its secret exists only as a hash)."""

    key_id: str
    tenant_id: str
    name: str
    secret_hash: str
    scopes: frozenset[str]
    rate_limit_per_minute: int
    created_at: datetime
    revoked_at: datetime | None
    tenant_disabled: bool = False


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """What a tenant may place: toll-fraud and abuse guards set by the operator.

    Attributes:
        calls_per_minute: calls ``POST /calls`` accepts per minute; None: no limit.
        allowed_countries: ISO 3166 alpha-2 regions calls may go to; None: anywhere.
        max_concurrent_calls: live calls (inbound and outbound) at once; None: no cap.
    """

    calls_per_minute: int | None = None
    allowed_countries: frozenset[str] | None = None
    max_concurrent_calls: int | None = None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What may be shown of a provider account: the names of its secrets, never their values.

    Attributes:
        provider: provider name.
        secret_names: which credentials are set.
        fields: the non-secret settings (account id, caller id, ...).
        updated_at: when it was last stored.
    """

    provider: str
    secret_names: tuple[str, ...]
    fields: dict[str, str]
    updated_at: datetime


class TenantStore:
    """The edge's tenancy data.

    Args:
        cipher: encrypts provider credentials.
        engine: an engine on the ``edge`` schema; bound later with :meth:`bind`
            when the service connects.
    """

    def __init__(self, cipher: CredentialCipher, engine: AsyncEngine | None = None) -> None:
        self._cipher = cipher
        self._engine = engine

    @classmethod
    def from_settings(cls, credentials_key: str) -> TenantStore:
        """A store whose cipher uses the keys of ``VB_EDGE_CREDENTIALS_KEY``."""
        return cls(CredentialCipher(fernet_keys(credentials_key)))

    async def open(self, service: Service) -> None:
        """Connected hook: bind the database (its tables come from the edge's migrations).

        Raises:
            ConfigurationError: the edge has no database (``VB_DATABASE_URL``).
        """
        if service.db is None or service.db_schema is None:
            raise ConfigurationError(
                "the edge needs VB_DATABASE_URL: it stores tenants, API keys and credentials"
            )
        await self.bind(service.db)

    async def bind(self, engine: AsyncEngine) -> None:
        """Use ``engine`` from now on (a schema that ``voicebus migrate`` brought to head)."""
        self._engine = engine

    @property
    def bound(self) -> bool:
        """Whether a database is configured and open."""
        return self._engine is not None

    @property
    def engine(self) -> AsyncEngine:
        """The bound engine."""
        if self._engine is None:
            raise TenancyError("the edge has no database (VB_DATABASE_URL)")
        return self._engine

    # -- tenants ---------------------------------------------------------------

    async def create_tenant(self, tenant_id: str, name: str) -> Tenant:
        """Add a tenant. Raises ``ConflictError`` if the id is taken."""
        tenant = Tenant(tenant_id, name, disabled=False, created_at=datetime.now(UTC))
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(TENANTS).values(
                        tenant_id=tenant_id, name=name, disabled=False, created_at=tenant.created_at
                    )
                )
        except IntegrityError:
            raise ConflictError(f"tenant {tenant_id!r} already exists") from None
        return tenant

    async def tenant(self, tenant_id: str) -> Tenant:
        """One tenant. Raises ``NotFoundError``."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(TENANTS).where(TENANTS.c.tenant_id == tenant_id))
            ).first()
        if row is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return Tenant(row.tenant_id, row.name, row.disabled, row.created_at)

    async def tenants(self) -> list[Tenant]:
        """Every tenant, by id."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(TENANTS).order_by(TENANTS.c.tenant_id))
        return [Tenant(r.tenant_id, r.name, r.disabled, r.created_at) for r in rows]

    # -- API keys --------------------------------------------------------------

    async def add_key(
        self, tenant_id: str, key: NewKey, name: str, scopes: frozenset[str], rate_limit: int
    ) -> ApiKey:
        """Store a new key of ``tenant_id`` (its hash only)."""
        await self.tenant(tenant_id)
        stored = ApiKey(
            key_id=key.key_id,
            tenant_id=tenant_id,
            name=name,
            secret_hash=key.hash,
            scopes=scopes,
            rate_limit_per_minute=rate_limit,
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(API_KEYS).values(
                    key_id=stored.key_id,
                    tenant_id=tenant_id,
                    name=name,
                    secret_hash=key.hash,
                    scopes=sorted(scopes),
                    rate_limit_per_minute=rate_limit,
                    created_at=stored.created_at,
                )
            )
        return stored

    async def key(self, key_id: str) -> ApiKey | None:
        """A key by id, whoever owns it (authentication looks keys up this way), with
        whether its tenant is disabled."""
        query = (
            select(API_KEYS, TENANTS.c.disabled.label("tenant_disabled"))
            .join(TENANTS, TENANTS.c.tenant_id == API_KEYS.c.tenant_id)
            .where(API_KEYS.c.key_id == key_id)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _key(row)

    async def disabled(self, tenant_id: str) -> bool:
        """Whether ``tenant_id`` exists and is disabled."""
        async with self.engine.connect() as conn:
            value = await conn.scalar(
                select(TENANTS.c.disabled).where(TENANTS.c.tenant_id == tenant_id)
            )
        return bool(value)

    async def set_disabled(self, tenant_id: str, disabled: bool) -> Tenant:
        """Disable (or enable again) a tenant: its keys are refused while disabled."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(TENANTS).where(TENANTS.c.tenant_id == tenant_id).values(disabled=disabled)
            )
        return await self.tenant(tenant_id)

    async def limits(self, tenant_id: str) -> TenantLimits:
        """The tenant's limits (none set: no limits)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(TENANT_LIMITS).where(TENANT_LIMITS.c.tenant_id == tenant_id)
                )
            ).first()
        if row is None:
            return TenantLimits()
        countries = None if row.allowed_countries is None else frozenset(row.allowed_countries)
        return TenantLimits(row.calls_per_minute, countries, row.max_concurrent_calls)

    async def put_limits(self, tenant_id: str, limits: TenantLimits) -> TenantLimits:
        """Replace the tenant's limits. Raises ``NotFoundError``."""
        await self.tenant(tenant_id)
        countries = None if limits.allowed_countries is None else sorted(limits.allowed_countries)
        values = {
            "calls_per_minute": limits.calls_per_minute,
            "allowed_countries": countries,
            "max_concurrent_calls": limits.max_concurrent_calls,
            "updated_at": datetime.now(UTC),
        }
        stmt = pg_insert(TENANT_LIMITS).values(tenant_id=tenant_id, **values)
        stmt = stmt.on_conflict_do_update(index_elements=[TENANT_LIMITS.c.tenant_id], set_=values)
        async with self.engine.begin() as conn:
            await conn.execute(stmt)
        return limits

    async def keys(self, tenant_id: str) -> list[ApiKey]:
        """The keys of one tenant, oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(API_KEYS)
                .where(API_KEYS.c.tenant_id == tenant_id)
                .order_by(API_KEYS.c.created_at, API_KEYS.c.key_id)
            )
        return [_key(r) for r in rows]

    async def revoke_key(self, tenant_id: str, key_id: str) -> ApiKey:
        """Revoke a key of ``tenant_id`` (idempotent). Raises ``NotFoundError``."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(API_KEYS)
                .where(
                    API_KEYS.c.tenant_id == tenant_id,
                    API_KEYS.c.key_id == key_id,
                    API_KEYS.c.revoked_at.is_(None),
                )
                .values(revoked_at=datetime.now(UTC))
            )
        key = await self.key(key_id)
        if key is None or key.tenant_id != tenant_id:
            raise NotFoundError(f"no key {key_id!r}")
        return key

    # -- provider accounts -----------------------------------------------------

    async def put_account(
        self, tenant_id: str, provider: str, secrets: dict[str, str], fields: dict[str, str]
    ) -> AccountInfo:
        """Store (replace) a tenant's credentials for one provider, encrypted."""
        await self.tenant(tenant_id)
        info = AccountInfo(provider, tuple(sorted(secrets)), dict(fields), datetime.now(UTC))
        values = {
            "ciphertext": self._cipher.encrypt(secrets, fields),
            "secret_names": list(info.secret_names),
            "updated_at": info.updated_at,
        }
        stmt = pg_insert(PROVIDER_ACCOUNTS).values(tenant_id=tenant_id, provider=provider, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[PROVIDER_ACCOUNTS.c.tenant_id, PROVIDER_ACCOUNTS.c.provider],
            set_=values,
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)
        return info

    async def account_info(self, tenant_id: str, provider: str) -> AccountInfo:
        """An account without its secrets. Raises ``NotFoundError``."""
        row = await self._account_row(tenant_id, provider)
        _secrets, fields = self._cipher.decrypt(row.ciphertext)
        return AccountInfo(provider, tuple(row.secret_names), fields, row.updated_at)

    async def account(
        self, tenant_id: str, provider: str
    ) -> tuple[dict[str, str], dict[str, str]] | None:
        """``(secrets, fields)`` decrypted, or None when the tenant stored none for ``provider``."""
        try:
            row = await self._account_row(tenant_id, provider)
        except NotFoundError:
            return None
        return self._cipher.decrypt(row.ciphertext)

    async def delete_account(self, tenant_id: str, provider: str) -> None:
        """Forget a tenant's credentials for one provider. Raises ``NotFoundError``."""
        async with self.engine.begin() as conn:
            done = await conn.execute(
                delete(PROVIDER_ACCOUNTS).where(
                    PROVIDER_ACCOUNTS.c.tenant_id == tenant_id,
                    PROVIDER_ACCOUNTS.c.provider == provider,
                )
            )
        if done.rowcount == 0:
            raise NotFoundError(f"no {provider} account for tenant {tenant_id!r}")

    async def rotate_credentials(self, *, dry_run: bool = False) -> tuple[int, int]:
        """Encrypt every stored account again with the first key.

        Rows are locked while they are rewritten, so an account stored meanwhile is
        not overwritten with its old value.

        Returns:
            ``(rotated, unreadable)``: rows re-encrypted (or that would be), and rows no
            configured key opens (left as they are).
        """
        rotated = unreadable = 0
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                select(
                    PROVIDER_ACCOUNTS.c.tenant_id,
                    PROVIDER_ACCOUNTS.c.provider,
                    PROVIDER_ACCOUNTS.c.ciphertext,
                ).with_for_update()
            )
            for row in rows.all():
                try:
                    token = self._cipher.rotate(row.ciphertext)
                except CredentialsError:
                    unreadable += 1
                    log.error(
                        "stored credentials cannot be decrypted",
                        extra={"tenant_id": row.tenant_id, "provider": row.provider},
                    )
                    continue
                rotated += 1
                if dry_run:
                    continue
                await conn.execute(
                    update(PROVIDER_ACCOUNTS)
                    .where(
                        PROVIDER_ACCOUNTS.c.tenant_id == row.tenant_id,
                        PROVIDER_ACCOUNTS.c.provider == row.provider,
                    )
                    .values(ciphertext=token)
                )
        return rotated, unreadable

    @property
    def key_count(self) -> int:
        """How many credential keys this store decrypts with."""
        return self._cipher.key_count

    async def _account_row(self, tenant_id: str, provider: str) -> Any:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(PROVIDER_ACCOUNTS).where(
                        PROVIDER_ACCOUNTS.c.tenant_id == tenant_id,
                        PROVIDER_ACCOUNTS.c.provider == provider,
                    )
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no {provider} account for tenant {tenant_id!r}")
        return row


def _key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        tenant_id=row.tenant_id,
        name=row.name,
        secret_hash=row.secret_hash,
        scopes=frozenset(row.scopes),
        rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        tenant_disabled=bool(getattr(row, "tenant_disabled", False)),
    )
