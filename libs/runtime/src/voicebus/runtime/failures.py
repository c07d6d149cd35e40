"""What kind of failure an exception is: an outage to wait out, or data to set aside.

Consumers decide once, here, what to do when handling a message failed:

- ``TRANSIENT``: something the message needs is unreachable (the database, the
  bus) — retry later, as long as it takes; the message is not at fault.
- ``DATA``: the message itself can never be handled (not the contract's shape,
  a value the database refuses) — set it aside as a dead letter at once.
- ``UNKNOWN``: anything else (a defect) — retry with backoff, and set the
  message aside only after many failed deliveries.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Final

import asyncpg
import nats.errors
import sqlalchemy.exc
from pydantic import ValidationError

from voicebus.contracts.deadletters import DeadLetterReason
from voicebus.contracts.errors import ContractError

__all__ = ["Failure", "classify", "dead_letter_reason", "describe"]


class Failure(Enum):
    """What kind of failure an exception is."""

    TRANSIENT = "transient"
    DATA = "data"
    UNKNOWN = "unknown"


# SQLSTATE classes: 08 connection, 40 rollback (deadlock, serialization), 53 resources,
# 57 operator intervention (shutdown), 58 system (I/O); 22 data exception, 23 integrity.
_TRANSIENT_SQLSTATE: Final = ("08", "40", "53", "57", "58")
_DATA_SQLSTATE: Final = ("22", "23")
_TRANSIENT_TYPES: Final = (
    OSError,  # ConnectionError and socket errors included
    TimeoutError,
    nats.errors.Error,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError,
)


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str):
        return state
    # SQLAlchemy wraps the driver's error: its ``orig`` (asyncpg's, through an adapter)
    orig = getattr(exc, "orig", None)
    if orig is not None and orig is not exc:
        inner = getattr(orig, "__cause__", None) or orig
        state = getattr(inner, "sqlstate", None) or getattr(orig, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


_INVALID: Final = (ValidationError, json.JSONDecodeError, UnicodeError, ContractError)
"""The message is not a valid message of the contract."""


def classify(exc: BaseException) -> Failure:
    """The kind of failure ``exc`` is (see the module docstring)."""
    if isinstance(exc, _INVALID):
        return Failure.DATA
    state = _sqlstate(exc)
    if state is not None:
        if state.startswith(_DATA_SQLSTATE):
            return Failure.DATA
        if state.startswith(_TRANSIENT_SQLSTATE):
            return Failure.TRANSIENT
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return Failure.TRANSIENT
    if isinstance(exc, _TRANSIENT_TYPES):
        return Failure.TRANSIENT
    return Failure.UNKNOWN


def dead_letter_reason(exc: BaseException) -> DeadLetterReason:
    """The reason a message that failed with ``exc`` is set aside."""
    if isinstance(exc, _INVALID):
        return DeadLetterReason.INVALID_MESSAGE
    if classify(exc) is Failure.DATA:
        return DeadLetterReason.STORAGE_REJECTED
    return DeadLetterReason.HANDLER_FAILED


def describe(exc: BaseException) -> str:
    """What went wrong, for a dead letter's detail: field names, never values.

    A pydantic error lists each field and message (not the input); a database error
    its class and SQLSTATE; anything else its class name.
    """
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        return "invalid message: " + "; ".join(parts)
    state = _sqlstate(exc)
    name = type(getattr(exc, "orig", None) or exc).__name__
    if state is not None:
        return f"the database refused it: {name} (SQLSTATE {state})"
    return f"{type(exc).__name__}"
