"""Errors raised by the runtime kit, and the one rule for upstream failures."""

from __future__ import annotations


class VoicebusError(Exception):
    """Root of every error raised by ``voicebus.runtime`` and the services built on it."""


class ConfigurationError(VoicebusError):
    """A setting is missing, malformed or unsafe for the environment."""


class BusError(VoicebusError):
    """NATS cannot be used: the connection was refused or never came up."""


class ProvisioningError(BusError):
    """A stream or key-value bucket could not be created or updated."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"cannot provision {name!r}: {reason}")


class DatabaseError(VoicebusError):
    """The database URL or schema is unusable."""


class ProviderError(VoicebusError):
    """An upstream provider (telephony, STT, TTS, LLM, webhook) failed.

    Attributes:
        retryable: whether the same request may succeed if sent again.
        status: the HTTP status the provider answered, if any.
        provider: which provider failed, e.g. ``"twilio"``.
        code: the provider's own error code, if it sent one (Twilio ``21211``).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        provider: str | None = None,
        code: str | None = None,
    ) -> None:
        self.retryable = retryable
        self.status = status
        self.provider = provider
        self.code = code
        super().__init__(message)

    @staticmethod
    def is_retryable_status(status: int) -> bool:
        """The rule, decided once: 4xx other than 408/429 are not retryable.

        408 (timeout) and 429 (rate limited) and every 5xx may succeed later;
        any other 4xx means the request itself is wrong. A status below 400 is
        not a failure a retry could fix either.
        """
        if status in (408, 429):
            return True
        return status >= 500

    @classmethod
    def from_status(
        cls,
        status: int,
        *,
        provider: str | None = None,
        message: str | None = None,
        code: str | None = None,
    ) -> ProviderError:
        """Build the error for an HTTP status a provider answered.

        Args:
            status: the HTTP status code.
            provider: which provider answered, for the message and logs.
            message: what was being done; defaults to a generic text.
            code: the provider's own error code, if any.

        Returns:
            A ``ProviderError`` whose ``retryable`` follows :meth:`is_retryable_status`.
        """
        who = provider or "provider"
        text = message or "request failed"
        return cls(
            f"{who}: {text} (HTTP {status})",
            retryable=cls.is_retryable_status(status),
            status=status,
            provider=provider,
            code=code,
        )
