"""Errors raised by the contracts: all are ``ValueError`` so callers at the edge
can turn them into a 4xx naming what was wrong."""

from __future__ import annotations


class ContractError(ValueError):
    """Root of every error raised by ``voicebus.contracts``."""


class InvalidTokenError(ContractError):
    """A value cannot be one token of a NATS subject."""

    def __init__(self, what: str, value: object) -> None:
        self.what = what
        self.value = value
        super().__init__(
            f"invalid {what} {value!r}: a subject token is 1-128 characters of "
            "letters, digits, '_' or '-' (no dots, wildcards or spaces)"
        )


class InvalidAudioFrameError(ContractError):
    """An audio frame's bytes or headers do not follow the frame codec."""
