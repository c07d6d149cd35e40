"""Errors of the tenancy store; the API turns each into one HTTP status."""

from __future__ import annotations

from voicebus.runtime.errors import VoicebusError


class TenancyError(VoicebusError):
    """Root of the tenancy store's errors."""


class NotFoundError(TenancyError):
    """The tenant, key or account does not exist (or belongs to another tenant)."""


class ConflictError(TenancyError):
    """The resource already exists."""


class CredentialsError(TenancyError):
    """Stored credentials cannot be decrypted with the configured keys."""
