"""Versioned documents (agents, tools): every save a new immutable version; archive, never delete.

:class:`SqlVersions` keeps them in PostgreSQL; :class:`MemoryVersions` in a dict
with the same rules (an orchestrator without a database in development, and
unit tests). Both refuse a second create, a save over an archived document and
a save whose expected version is no longer current, so two editors never
silently overwrite each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import and_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicebus.contracts.events import utc_now
from voicebus.orchestrator.errors import StoreConflictError
from voicebus.orchestrator.tables import RESOURCE_VERSIONS, RESOURCES

Kind = Literal["agent", "tool"]
TEMPLATE_OWNER = ""
"""The owner of a shared template."""


@dataclass(frozen=True, slots=True)
class Stored:
    """One version of a document, with its resource's state."""

    kind: Kind
    owner: str
    name: str
    version: int
    current_version: int
    archived: bool
    body: Mapping[str, Any]
    secret: bytes | None
    digest: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One entry of a document's history."""

    version: int
    created_at: datetime
    digest: str


class Versions(Protocol):
    """Where agents and tools are kept."""

    async def create(
        self, kind: Kind, owner: str, name: str, body: Mapping[str, Any], secret: bytes | None,
        digest: str,
    ) -> Stored:  # fmt: skip
        """Version 1 of a new document. Raises StoreConflictError if it exists."""
        ...

    async def save(
        self, kind: Kind, owner: str, name: str, body: Mapping[str, Any], secret: bytes | None,
        digest: str, *, expected: int | None = None, restore: bool = False,
    ) -> Stored | None:  # fmt: skip
        """A new version (None: no such document). ``restore`` un-archives.

        Raises:
            StoreConflictError: archived (and not ``restore``), or not at ``expected``.
        """
        ...

    async def get(
        self, kind: Kind, owner: str, name: str, version: int | None = None
    ) -> Stored | None:
        """One version (the current one by default), or None."""
        ...

    async def current(
        self, kind: Kind, owners: Sequence[str], include_archived: bool = False
    ) -> list[Stored]:
        """The current version of every document of these owners, by owner then name."""
        ...

    async def history(self, kind: Kind, owner: str, name: str) -> list[VersionInfo]:
        """Every version, newest first (empty: no such document)."""
        ...

    async def archive(self, kind: Kind, owner: str, name: str) -> Stored | None:
        """Archive (idempotent); None: no such document."""
        ...

    async def reseal(self, kind: Kind, transform: Callable[[bytes], bytes | None]) -> int:
        """Rewrite every stored secret of ``kind`` (every version) through ``transform``
        (None: leave it); the number rewritten."""
        ...


class MemoryVersions:
    """:class:`Versions` in memory, same rules."""

    def __init__(self) -> None:
        self._heads: dict[tuple[str, str, str], tuple[int, bool]] = {}
        self._rows: dict[tuple[str, str, str, int], Stored] = {}

    async def create(
        self, kind: Kind, owner: str, name: str, body: Mapping[str, Any], secret: bytes | None,
        digest: str,
    ) -> Stored:  # fmt: skip
        """Version 1."""
        key = (kind, owner, name)
        if key in self._heads:
            raise StoreConflictError(f"{kind} {name!r} exists", code=f"{kind}_exists")
        self._heads[key] = (1, False)
        row = Stored(kind, owner, name, 1, 1, False, dict(body), secret, digest, utc_now())
        self._rows[(*key, 1)] = row
        return row

    async def save(
        self, kind: Kind, owner: str, name: str, body: Mapping[str, Any], secret: bytes | None,
        digest: str, *, expected: int | None = None, restore: bool = False,
    ) -> Stored | None:  # fmt: skip
        """A new version."""
        key = (kind, owner, name)
        head = self._heads.get(key)
        if head is None:
            return None
        _check(kind, name, head[0], head[1], expected, restore)
        version = head[0] + 1
        self._heads[key] = (version, False)
        row = Stored(kind, owner, name, version, version, False, dict(body), secret, digest,
                     utc_now())  # fmt: skip
        self._rows[(*key, version)] = row
        return row

    async def get(
        self, kind: Kind, owner: str, name: str, version: int | None = None
    ) -> Stored | None:
        """One version."""
        head = self._heads.get((kind, owner, name))
        if head is None:
            return None
        row = self._rows.get((kind, owner, name, version or head[0]))
        return None if row is None else replace(row, current_version=head[0], archived=head[1])

    async def current(
        self, kind: Kind, owners: Sequence[str], include_archived: bool = False
    ) -> list[Stored]:
        """Current versions."""
        out = []
        for (k, owner, name), (version, archived) in sorted(self._heads.items()):
            if k == kind and owner in owners and (include_archived or not archived):
                row = self._rows[(k, owner, name, version)]
                out.append(replace(row, archived=archived))
        return out

    async def history(self, kind: Kind, owner: str, name: str) -> list[VersionInfo]:
        """Newest first."""
        rows = [r for (k, o, n, _), r in self._rows.items() if (k, o, n) == (kind, owner, name)]
        return [VersionInfo(r.version, r.created_at, r.digest) for r in reversed(rows)]

    async def archive(self, kind: Kind, owner: str, name: str) -> Stored | None:
        """Archive."""
        head = self._heads.get((kind, owner, name))
        if head is None:
            return None
        self._heads[(kind, owner, name)] = (head[0], True)
        return await self.get(kind, owner, name)

    async def reseal(self, kind: Kind, transform: Callable[[bytes], bytes | None]) -> int:
        """Rewrite secrets."""
        done = 0
        for key, row in list(self._rows.items()):
            if key[0] != kind or row.secret is None:
                continue
            new = transform(row.secret)
            if new is not None:
                self._rows[key] = replace(row, secret=new)
                done += 1
        return done


def _check(
    kind: str, name: str, current: int, archived: bool, expected: int | None, restore: bool
) -> None:
    if archived and not restore:
        raise StoreConflictError(f"{kind} {name!r} is archived", code=f"{kind}_archived")
    if expected is not None and expected != current:
        raise StoreConflictError(
            f"{kind} {name!r} is at version {current}, not {expected}", code="version_conflict"
        )


class SqlVersions:
    """:class:`Versions` in PostgreSQL (bound once the service has connected)."""

    def __init__(self, engine: AsyncEngine | None = None) -> None:
        self._engine = engine

    def bind(self, engine: AsyncEngine) -> None:
        """Use ``engine`` from now on."""
        self._engine = engine

    async def reseal(self, kind: Kind, transform: Callable[[bytes], bytes | None]) -> int:
        """Rewrite secrets, rows locked meanwhile (a version is never written twice)."""
        v = RESOURCE_VERSIONS
        done = 0
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                select(v.c.owner, v.c.name, v.c.version, v.c.secret)
                .where(v.c.kind == kind, v.c.secret.is_not(None))
                .with_for_update()
            )
            for row in rows.all():
                new = transform(row.secret)
                if new is None:
                    continue
                await conn.execute(
                    update(v)
                    .where(v.c.kind == kind, v.c.owner == row.owner, v.c.name == row.name,
                           v.c.version == row.version)
                    .values(secret=new)
                )  # fmt: skip
                done += 1
        return done

    @property
    def engine(self) -> AsyncEngine:
        """The bound engine."""
        if self._engine is None:
            raise RuntimeError("orchestrator store used before an engine was bound")
        return self._engine

    async def create(
        self, kind: Kind, owner: str, name: str, body: Mapping[str, Any], secret: bytes | None,
        digest: str,
    ) -> Stored:  # fmt: skip
        """Version 1, in one transaction with its resource row."""
        now = utc_now()
        async with self.engine.begin() as conn:
            head = insert(RESOURCES).values(
                kind=kind,
                owner=owner,
                name=name,
                current_version=1,
                archived=False,
                created_at=now,
                updated_at=now,
            )
            created = await conn.execute(head.on_conflict_do_nothing().returning(RESOURCES.c.name))
            if created.first() is None:
                raise StoreConflictError(f"{kind} {name!r} exists", code=f"{kind}_exists")
            await _insert_version(conn, kind, owner, name, 1, body, secret, digest, now)
        return Stored(kind, owner, name, 1, 1, False, dict(body), secret, digest, now)  # fmt: skip

    async def save(
        self, kind: Kind, owner: str, name: str, body: Mapping[str, Any], secret: bytes | None,
        digest: str, *, expected: int | None = None, restore: bool = False,
    ) -> Stored | None:  # fmt: skip
        """A new version; the resource row is locked so versions never collide."""
        now = utc_now()
        key = _key(RESOURCES, kind, owner, name)
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(RESOURCES.c.current_version, RESOURCES.c.archived)
                    .where(key)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return None
            _check(kind, name, row.current_version, row.archived, expected, restore)
            version = row.current_version + 1
            await _insert_version(conn, kind, owner, name, version, body, secret, digest, now)
            await conn.execute(
                update(RESOURCES).where(key)
                .values(current_version=version, archived=False, updated_at=now)
            )  # fmt: skip
        return Stored(kind, owner, name, version, version, False, dict(body), secret, digest, now)

    async def get(
        self, kind: Kind, owner: str, name: str, version: int | None = None
    ) -> Stored | None:
        """One version (current by default)."""
        v = RESOURCE_VERSIONS
        wanted = RESOURCES.c.current_version if version is None else version
        query = _joined().where(_key(RESOURCES, kind, owner, name), v.c.version == wanted)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _stored(row)

    async def current(
        self, kind: Kind, owners: Sequence[str], include_archived: bool = False
    ) -> list[Stored]:
        """Current versions of these owners' documents."""
        r = RESOURCES
        query = _joined().where(
            r.c.kind == kind,
            r.c.owner.in_(list(owners)),
            RESOURCE_VERSIONS.c.version == r.c.current_version,
        )
        if not include_archived:
            query = query.where(r.c.archived.is_(False))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(r.c.owner, r.c.name))).all()
        return [_stored(row) for row in rows]

    async def history(self, kind: Kind, owner: str, name: str) -> list[VersionInfo]:
        """Newest first."""
        v = RESOURCE_VERSIONS
        query = (
            select(v.c.version, v.c.created_at, v.c.digest)
            .where(_key(v, kind, owner, name))
            .order_by(v.c.version.desc())
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [VersionInfo(r.version, r.created_at, r.digest) for r in rows]

    async def archive(self, kind: Kind, owner: str, name: str) -> Stored | None:
        """Archive (idempotent)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(RESOURCES).where(_key(RESOURCES, kind, owner, name))
                .values(archived=True, updated_at=utc_now())
            )  # fmt: skip
        return await self.get(kind, owner, name)


def _key(table: Any, kind: str, owner: str, name: str) -> Any:
    return and_(table.c.kind == kind, table.c.owner == owner, table.c.name == name)


def _joined() -> Any:
    r, v = RESOURCES, RESOURCE_VERSIONS
    join = r.join(v, and_(r.c.kind == v.c.kind, r.c.owner == v.c.owner, r.c.name == v.c.name))
    return select(
        r.c.kind, r.c.owner, r.c.name, v.c.version, r.c.current_version, r.c.archived,
        v.c.body, v.c.secret, v.c.digest, v.c.created_at,
    ).select_from(join)  # fmt: skip


def _stored(row: Any) -> Stored:
    return Stored(
        row.kind, row.owner, row.name, row.version, row.current_version, row.archived,
        row.body, row.secret, row.digest, row.created_at,
    )  # fmt: skip


async def _insert_version(
    conn: AsyncConnection, kind: str, owner: str, name: str, version: int,
    body: Mapping[str, Any], secret: bytes | None, digest: str, now: datetime,
) -> None:  # fmt: skip
    await conn.execute(
        insert(RESOURCE_VERSIONS).values(
            kind=kind, owner=owner, name=name, version=version, body=dict(body), secret=secret,
            digest=digest, created_at=now,
        )
    )  # fmt: skip
