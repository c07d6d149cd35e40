"""The registry telephony provider plug-ins add themselves to.

A provider folder calls :func:`register` when imported; ``providers/__init__.py``
imports each folder (one line per provider). Shared code iterates over
:func:`providers` and never branches on a provider's name.
"""

from __future__ import annotations

from voicebus.contracts.subjects import token
from voicebus.gateway.providers.base import Provider

_PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    """Add ``provider``; its name must be a subject-safe token and not taken.

    Raises:
        ValueError: the name is already registered.
    """
    token(provider.name, "provider name")
    if provider.name in _PROVIDERS:
        raise ValueError(f"telephony provider {provider.name!r} is already registered")
    _PROVIDERS[provider.name] = provider
    return provider


def providers() -> list[Provider]:
    """Every registered provider, in registration order."""
    return list(_PROVIDERS.values())


def get(name: str) -> Provider:
    """The provider registered under ``name``.

    Raises:
        KeyError: no such provider.
    """
    return _PROVIDERS[name]
