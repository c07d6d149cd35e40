"""Errors of the simulated caller."""

from __future__ import annotations


class CallerError(RuntimeError):
    """The simulated call could not be placed or went wrong."""


class CallRejectedError(CallerError):
    """The gateway answered the webhook with an error or without a ``<Connect><Stream>``.

    Attributes:
        status: the HTTP status of the answer.
        body: the answer's body (TwiML, or an error page).
    """

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class CallClosedError(CallerError):
    """The call ended before a line was fully spoken."""
