"""Agents and webhook tools of every tenant: create, save a version, read, archive.

A tenant sees its own agents and the shared templates (an agent of its own
shadows a template of the same id); another tenant's agent is not found. Every
save is checked in full (structure, flow, templates, engines, what a tenant may
do) and refused with a 422 naming each field. Tool secrets are sealed before
they reach the store and never leave the orchestrator again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from voicebus.contracts.agents import (
    AgentDefinition,
    DefinitionError,
    Problem,
    WebhookTool,
    parse_definition,
)
from voicebus.contracts.agents.api import AgentRecord, AgentVersionInfo, ToolRecord
from voicebus.contracts.agents.tools import WebhookSettings
from voicebus.contracts.agents.validation import validation_problems
from voicebus.orchestrator.errors import StoreConflictError
from voicebus.orchestrator.rules import engine_problems, tenant_problems
from voicebus.orchestrator.secret_box import SecretBox
from voicebus.orchestrator.versions import TEMPLATE_OWNER, Stored, Versions
from voicebus.runtime.rpc import Conflict, Invalid, NotFound

log = logging.getLogger(__name__)

_LAST_KNOWN: Final = 4096
_UNREACHABLE = (DBAPIError, PoolTimeout, OSError)  # OSError covers refused and timed out

OnAgentChange = Callable[[AgentRecord], Awaitable[None]]
SIGNING_KEY = "__signing_secret__"
"""Key of the signing secret among a tool's sealed secrets (not a header name)."""


def digest(body: Mapping[str, Any]) -> str:
    """SHA-256 of a document's canonical JSON: equal definitions, equal digests."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _invalid(problems: list[Problem]) -> Invalid:
    return Invalid("; ".join(str(p) for p in problems), code="invalid_definition")


def agent_record(row: Stored) -> AgentRecord:
    """The record of a stored agent version."""
    return AgentRecord(
        agent_id=row.name,
        tenant_id=row.owner or None,
        version=row.version,
        current_version=row.current_version,
        template=row.owner == TEMPLATE_OWNER,
        archived=row.archived,
        created_at=row.created_at,
        definition=AgentDefinition.model_validate(row.body),
    )


class AgentLibrary:
    """Agents in a :class:`Versions` store.

    Args:
        store: where versions are kept.
        on_change: called with the new current record after every save or archive.
    """

    def __init__(self, store: Versions, on_change: OnAgentChange | None = None) -> None:
        self.store = store
        self._on_change = on_change
        self._last_known: OrderedDict[tuple[str, str], Stored | None] = OrderedDict()

    async def check(self, raw: Mapping[str, Any], *, template: bool) -> AgentDefinition:
        """Parse and check a definition as its owner would save it.

        Raises:
            Invalid: every problem, each with its field's path.
        """
        try:
            definition = parse_definition(raw)
        except DefinitionError as exc:
            raise _invalid(exc.problems) from None
        problems = [] if template else tenant_problems(definition)
        problems += await engine_problems(definition)
        if problems:
            raise _invalid(problems)
        return definition

    async def create(
        self, tenant_id: str, agent_id: str, raw: Mapping[str, Any], *, template: bool = False
    ) -> AgentRecord:
        """Version 1 of a new agent (409 if the id is taken by the same owner)."""
        definition = await self.check(raw, template=template)
        body = definition.model_dump(mode="json")
        owner = TEMPLATE_OWNER if template else tenant_id
        try:
            row = await self.store.create("agent", owner, agent_id, body, None, digest(body))
        except StoreConflictError as exc:
            raise Conflict(str(exc), code=exc.code) from None
        return await self._changed(row)

    async def update(
        self,
        tenant_id: str,
        agent_id: str,
        raw: Mapping[str, Any],
        *,
        expected: int | None = None,
        template: bool = False,
    ) -> AgentRecord:
        """A new version of the owner's agent (a tenant cannot edit a template)."""
        definition = await self.check(raw, template=template)
        body = definition.model_dump(mode="json")
        owner = TEMPLATE_OWNER if template else tenant_id
        try:
            row = await self.store.save("agent", owner, agent_id, body, None, digest(body),
                                        expected=expected)  # fmt: skip
        except StoreConflictError as exc:
            raise Conflict(str(exc), code=exc.code) from None
        if row is None:
            raise _not_found(tenant_id, agent_id)
        return await self._changed(row)

    async def import_(
        self,
        tenant_id: str,
        agent_id: str,
        raw: Mapping[str, Any],
        *,
        template: bool,
        notify: bool = True,
    ) -> AgentRecord:
        """Create, or save a new version only if the definition changed (idempotent).

        ``notify=False`` (the start-up import, before the broker runs) publishes nothing:
        every instance reads the current version from the store at each call anyway.
        """
        definition = await self.check(raw, template=template)
        body = definition.model_dump(mode="json")
        owner = TEMPLATE_OWNER if template else tenant_id
        found = await self.store.get("agent", owner, agent_id)
        if found is not None and found.digest == digest(body) and not found.archived:
            return agent_record(found)
        if found is None:
            try:
                row = await self.store.create("agent", owner, agent_id, body, None, digest(body))
            except StoreConflictError:  # another instance imported it meanwhile
                again = await self.store.get("agent", owner, agent_id)
                assert again is not None
                return agent_record(again)
        else:
            saved = await self.store.save("agent", owner, agent_id, body, None, digest(body),
                                          restore=True)  # fmt: skip
            assert saved is not None
            row = saved
        return await self._changed(row) if notify else agent_record(row)

    async def resolve(self, tenant_id: str, agent_id: str) -> Stored | None:
        """The agent a tenant's call with this id uses: its own, else a template.

        While the database cannot be reached, the version this instance resolved last
        for the same tenant and id is used: a PostgreSQL outage must not turn callers
        away. An agent never resolved here before is still an error then.
        """
        key = (tenant_id, agent_id)
        try:
            found = await self.store.get("agent", tenant_id, agent_id)
            if found is None:
                found = await self.store.get("agent", TEMPLATE_OWNER, agent_id)
        except _UNREACHABLE:
            if key not in self._last_known:
                raise
            log.warning("agent store unreachable, last known version used",
                        extra={"agent_id": agent_id})  # fmt: skip
            return self._last_known[key]
        self._last_known[key] = found
        self._last_known.move_to_end(key)
        while len(self._last_known) > _LAST_KNOWN:
            self._last_known.popitem(last=False)
        return found

    async def get(self, tenant_id: str, agent_id: str, version: int | None = None) -> AgentRecord:
        """One version of an agent the tenant may use (404 otherwise)."""
        current = await self.resolve(tenant_id, agent_id)
        if current is None:
            raise _not_found(tenant_id, agent_id)
        if version is None or version == current.version:
            return agent_record(current)
        row = await self.store.get("agent", current.owner, agent_id, version)
        if row is None:
            raise NotFound(f"agent {agent_id!r} has no version {version}", code="version_not_found")
        return agent_record(row)

    async def listing(self, tenant_id: str, include_archived: bool = False) -> list[AgentRecord]:
        """The tenant's agents and the templates it does not shadow, by id."""
        rows = await self.store.current("agent", [tenant_id, TEMPLATE_OWNER], include_archived)
        own = {r.name for r in rows if r.owner == tenant_id}
        kept = [r for r in rows if r.owner == tenant_id or r.name not in own]
        return [agent_record(r) for r in sorted(kept, key=lambda r: r.name)]

    async def history(self, tenant_id: str, agent_id: str) -> list[AgentVersionInfo]:
        """Every version of an agent the tenant may use, newest first."""
        current = await self.resolve(tenant_id, agent_id)
        if current is None:
            raise _not_found(tenant_id, agent_id)
        rows = await self.store.history("agent", current.owner, agent_id)
        return [AgentVersionInfo(version=r.version, created_at=r.created_at, digest=r.digest)
                for r in rows]  # fmt: skip

    async def archive(
        self, tenant_id: str, agent_id: str, *, template: bool = False
    ) -> AgentRecord:
        """Archive the owner's agent (a tenant cannot archive a template: 404)."""
        owner = TEMPLATE_OWNER if template else tenant_id
        row = await self.store.archive("agent", owner, agent_id)
        if row is None:
            raise _not_found(tenant_id, agent_id)
        return await self._changed(row)

    async def _changed(self, row: Stored) -> AgentRecord:
        record = agent_record(row)
        if self._on_change is not None:
            await self._on_change(record)
        return record


def _not_found(tenant_id: str, agent_id: str) -> NotFound:
    return NotFound(f"no agent {agent_id!r} for tenant {tenant_id!r}", code="agent_not_found")


class ToolLibrary:
    """Tenants' webhook tools in a :class:`Versions` store, secrets sealed.

    Args:
        store: where versions are kept.
        box: seals and opens secrets.
    """

    def __init__(self, store: Versions, box: SecretBox) -> None:
        self.store = store
        self._box = box

    @staticmethod
    def _parse(raw: Mapping[str, Any]) -> WebhookTool:
        try:
            return WebhookTool.model_validate(raw)
        except ValidationError as exc:
            raise _invalid(validation_problems(exc)) from None

    def _seal(
        self, tool: WebhookTool, kept: Mapping[str, str]
    ) -> tuple[dict[str, Any], bytes, str | None]:
        """(stored body, sealed secrets, signing secret if generated now)."""
        values = {k: v for k, v in kept.items() if k != SIGNING_KEY}
        values.update({k: v.get_secret_value() for k, v in tool.secret_headers.items()})
        generated = None
        if tool.signing_secret is not None:
            signing = tool.signing_secret.get_secret_value()
        elif SIGNING_KEY in kept:
            signing = kept[SIGNING_KEY]
        else:
            signing = generated = secrets.token_urlsafe(32)
        body = tool.settings().model_dump(mode="json")
        body["secret_headers"] = sorted(values)
        # The digest covers the secrets' names, not their values (never exposed, even hashed).
        return body, self._box.seal({**values, SIGNING_KEY: signing}), generated

    async def create(self, tenant_id: str, raw: Mapping[str, Any]) -> ToolRecord:
        """Version 1; the reply holds the signing secret once if it was generated."""
        tool = self._parse(raw)
        body, sealed, generated = self._seal(tool, {})
        try:
            row = await self.store.create("tool", tenant_id, tool.name, body, sealed, digest(body))
        except StoreConflictError as exc:
            raise Conflict(str(exc), code=exc.code) from None
        return tool_record(row, signing_secret=generated)

    async def update(self, tenant_id: str, name: str, raw: Mapping[str, Any]) -> ToolRecord:
        """A new version; secrets not given are kept from the current one."""
        tool = self._parse(raw)
        if tool.name != name:
            raise Invalid(f"name: {tool.name!r} is not the tool being updated ({name!r})")
        current = await self.store.get("tool", tenant_id, name)
        if current is None:
            raise NotFound(f"no tool {name!r} for tenant {tenant_id!r}", code="tool_not_found")
        kept = self._box.open(current.secret) if current.secret else {}
        body, sealed, generated = self._seal(tool, kept)
        try:
            row = await self.store.save("tool", tenant_id, name, body, sealed, digest(body))
        except StoreConflictError as exc:
            raise Conflict(str(exc), code=exc.code) from None
        assert row is not None
        return tool_record(row, signing_secret=generated)

    async def import_(self, tenant_id: str, raw: Mapping[str, Any]) -> ToolRecord:
        """Create, or save a new version only if the tool or its secrets changed (idempotent)."""
        tool = self._parse(raw)
        current = await self.store.get("tool", tenant_id, tool.name)
        if current is None:
            try:
                return await self.create(tenant_id, raw)
            except Conflict:  # another instance imported it meanwhile
                current = await self.store.get("tool", tenant_id, tool.name)
                assert current is not None
        kept = self._box.open(current.secret) if current.secret else {}
        body, _, _ = self._seal(tool, kept)
        wanted = {k: v.get_secret_value() for k, v in tool.secret_headers.items()}
        if tool.signing_secret is not None:
            wanted[SIGNING_KEY] = tool.signing_secret.get_secret_value()
        unchanged = digest(body) == current.digest and all(
            kept.get(k) == v for k, v in wanted.items()
        )
        if unchanged and not current.archived:
            return tool_record(current)
        return await self.update(tenant_id, tool.name, raw)

    async def get(self, tenant_id: str, name: str, version: int | None = None) -> ToolRecord:
        """One version of the tenant's tool."""
        row = await self.store.get("tool", tenant_id, name, version)
        if row is None:
            raise NotFound(f"no tool {name!r} for tenant {tenant_id!r}", code="tool_not_found")
        return tool_record(row)

    async def runnable(
        self, tenant_id: str, name: str
    ) -> tuple[WebhookSettings, dict[str, str]] | None:
        """The current version's settings and opened secrets, for a call (None: no such tool)."""
        row = await self.store.get("tool", tenant_id, name)
        if row is None or row.archived:
            return None
        record = tool_record(row)
        return record.settings, self._box.open(row.secret) if row.secret else {}

    async def listing(self, tenant_id: str, include_archived: bool = False) -> list[ToolRecord]:
        """The tenant's tools, by name."""
        rows = await self.store.current("tool", [tenant_id], include_archived)
        return [tool_record(r) for r in rows]

    async def history(self, tenant_id: str, name: str) -> list[AgentVersionInfo]:
        """Every version, newest first."""
        rows = await self.store.history("tool", tenant_id, name)
        if not rows:
            raise NotFound(f"no tool {name!r} for tenant {tenant_id!r}", code="tool_not_found")
        return [AgentVersionInfo(version=r.version, created_at=r.created_at, digest=r.digest)
                for r in rows]  # fmt: skip

    async def archive(self, tenant_id: str, name: str) -> ToolRecord:
        """Archive (idempotent)."""
        row = await self.store.archive("tool", tenant_id, name)
        if row is None:
            raise NotFound(f"no tool {name!r} for tenant {tenant_id!r}", code="tool_not_found")
        return tool_record(row)


def tool_record(row: Stored, signing_secret: str | None = None) -> ToolRecord:
    """The record of a stored tool version (secret names only)."""
    body = dict(row.body)
    names = [str(n) for n in body.pop("secret_headers", [])]
    return ToolRecord(
        name=row.name,
        tenant_id=row.owner,
        version=row.version,
        current_version=row.current_version,
        archived=row.archived,
        created_at=row.created_at,
        settings=WebhookSettings.model_validate(body),
        secret_headers=names,
        signing_secret=signing_secret,
    )
