"""Where an engine's API key comes from: ``(tenant, engine) → secret``.

Keys never travel in agent options (those are published in agent profiles) and are
never logged. Today keys come from the environment; per-tenant keys, encrypted at
rest, will be served by the edge service behind the same :class:`KeyResolver`
protocol, so engines and services do not change when it lands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Protocol, runtime_checkable

ENV_PREFIX: Final = "VB_ENGINE_KEY_"

VENDOR_ENV: Final[Mapping[str, str]] = {
    "deepgram": "DEEPGRAM_API_KEY",
    "elevenlabs": "ELEVENLABS_API_KEY",
    "cartesia": "CARTESIA_API_KEY",
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GOOGLE_API_KEY",
    "sarvam": "SARVAM_API_KEY",
}
"""The vendor's own variable name, read when no voicebus-specific one is set."""

_UNSAFE: Final = re.compile(r"[^A-Z0-9]+")

URL_OPTIONS: Final = ("base_url", "url", "endpoint")
"""Engine options that point an engine somewhere other than its vendor."""


def shared_key_allowed(options: Mapping[str, object], *, template: bool) -> bool:
    """Whether the operator's shared key (not one set for the tenant) may be used.

    An operator's template may point an engine anywhere. A tenant's own agent that
    points its engine at a URL of its choosing must never receive the operator's
    key: only a key set for that tenant is sent there.
    """
    return template or not any(name in options for name in URL_OPTIONS)


@runtime_checkable
class KeyResolver(Protocol):
    """Resolves the API key an engine uses for one tenant's calls."""

    async def resolve(self, tenant_id: str, vendor: str, *, shared: bool = True) -> str | None:
        """The key, or None when the tenant has none for this vendor.

        Args:
            tenant_id: the call's tenant.
            vendor: the engine's vendor.
            shared: the operator's shared key may be used when the tenant has no own key.
        """
        ...


def env_names(tenant_id: str, vendor: str) -> list[str]:
    """Variables tried, most specific first.

    ``VB_ENGINE_KEY_<VENDOR>__<TENANT>``, ``VB_ENGINE_KEY_<VENDOR>``, then the vendor's
    own name (``DEEPGRAM_API_KEY``...).
    """
    v = _UNSAFE.sub("_", vendor.upper())
    t = _UNSAFE.sub("_", tenant_id.upper())
    names = [f"{ENV_PREFIX}{v}__{t}", f"{ENV_PREFIX}{v}"]
    if vendor in VENDOR_ENV:
        names.append(VENDOR_ENV[vendor])
    return names


class EnvKeyResolver:
    """Keys from an environment mapping (the process environment, passed in at start-up).

    Args:
        environ: the variables to read.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)

    def __repr__(self) -> str:
        return "EnvKeyResolver(<keys hidden>)"

    async def resolve(self, tenant_id: str, vendor: str, *, shared: bool = True) -> str | None:
        """The first non-empty variable of :func:`env_names` (only the tenant's own one
        when ``shared`` is false)."""
        names = env_names(tenant_id, vendor)
        for name in names if shared else names[:1]:
            value = self._environ.get(name, "").strip()
            if value:
                return value
        return None


class StaticKeyResolver:
    """Fixed keys by ``(tenant, vendor)`` (tests, tools)."""

    def __init__(self, keys: Mapping[tuple[str, str], str]) -> None:
        self._keys = dict(keys)

    def __repr__(self) -> str:
        return "StaticKeyResolver(<keys hidden>)"

    async def resolve(self, tenant_id: str, vendor: str, *, shared: bool = True) -> str | None:
        """The key for the pair, or None (static keys are all the tenant's own)."""
        return self._keys.get((tenant_id, vendor))
