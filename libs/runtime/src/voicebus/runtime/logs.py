"""Process logging: JSON lines or console text, with personal data redacted centrally.

Log messages are fixed strings. Personal data (phone numbers, transcripts,
DTMF digits, tool arguments) goes only into ``extra=`` fields whose key
contains ``pii``; with ``VB_LOG_REDACT_PII`` on (the default) their values are
written as ``"[redacted]"``::

    log.info("call started", extra={"call_id": cid, **pii(from_number=caller)})

Database errors are written without their message, whatever the setting: PostgreSQL
quotes the values it refused (``invalid input syntax for type integer: "+1415…"``,
``Key (phone)=(…) already exists``), so a traceback of an exception from asyncpg or
SQLAlchemy (its SQL parameters are hidden by the engine too) shows its class and
SQLSTATE only.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import SecretBytes, SecretStr

from voicebus.runtime.settings import ServiceSettings

__all__ = [
    "REDACTED",
    "ConsoleFormatter",
    "JsonFormatter",
    "configure_logging",
    "format_exception",
    "pii",
    "redact_database_errors",
]

REDACTED: Final = "[redacted]"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
# ``color_message`` is uvicorn's ANSI-coloured copy of the message.
_RECORD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)
# Keys that must never carry a value into a log, whatever the redaction setting.
_SECRET_KEY_PARTS: Final = ("password", "secret", "token", "credential", "authorization")
_HANDLER_MARK: Final = "_voicebus_handler"
_CAUSE: Final = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT: Final = "\nDuring handling of the above exception, another exception occurred:\n\n"
# Exceptions whose message may quote values the database refused.
_DATABASE_MODULES: Final = ("asyncpg", "sqlalchemy")


def _database_errors(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and its causes and contexts that a database library raised."""
    found: list[BaseException] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__module__.split(".", 1)[0] in _DATABASE_MODULES:
            found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def _hidden(error: BaseException) -> str:
    code = _sqlstate(error)
    return f"[message hidden: SQLSTATE {code}]" if code else "[message hidden]"


def redact_database_errors(text: str, exc: BaseException | None) -> str:
    """``text`` with the message of every database error in ``exc``'s chain hidden."""
    for error in _database_errors(exc):
        message = str(error)
        if message:
            text = text.replace(message, _hidden(error))
    return text


def format_exception(exc: BaseException) -> str:
    """A traceback as Python prints it, each database error's message (and notes) hidden."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__cause__ is not None:
            chain.append((current, _CAUSE))
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            chain.append((current, _CONTEXT))
            current = current.__context__
        else:
            chain.append((current, None))
            current = None
    database = {id(e) for e in _database_errors(exc)}
    parts: list[str] = []
    for error, relation in reversed(chain):
        if error.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(error.__traceback__))
        if id(error) in database:
            kind = type(error)
            parts.append(f"{kind.__module__}.{kind.__qualname__}: {_hidden(error)}\n")
        else:
            parts.extend(traceback.format_exception_only(type(error), error))
        if relation is not None:
            parts.append(relation)
    return "".join(parts).rstrip("\n")


def pii(**fields: Any) -> dict[str, Any]:
    """Mark fields as personal data: ``pii(phone=n)`` gives ``{"pii_phone": n}``."""
    return {key if "pii" in key.lower() else f"pii_{key}": value for key, value in fields.items()}


def _clean(key: str, value: Any, redact_pii: bool) -> Any:
    lowered = key.lower()
    if any(part in lowered for part in _SECRET_KEY_PARTS):
        return REDACTED
    if redact_pii and "pii" in lowered:
        return REDACTED
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    return value


class _Base(logging.Formatter):
    """Shared field collection for both formats."""

    def __init__(self, *, service: str, instance: str, redact_pii: bool) -> None:
        super().__init__()
        self.service = service
        self.instance = instance
        self.redact_pii = redact_pii

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        """The traceback, database errors' messages hidden."""
        if ei[1] is None or not _database_errors(ei[1]):
            return super().formatException(ei)
        return format_exception(ei[1])

    def message(self, record: logging.LogRecord) -> str:
        """The record's message, a database error's text hidden if it was put in."""
        text = record.getMessage()
        return redact_database_errors(text, record.exc_info[1]) if record.exc_info else text

    def extras(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record's ``extra=`` fields, redacted."""
        return {
            key: _clean(key, value, self.redact_pii)
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRS and not key.startswith("_")
        }


class JsonFormatter(_Base):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, ``service``,
    ``instance``, then the record's ``extra=`` fields (and ``exc`` for a traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a JSON line."""
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": self.message(record),
            "service": self.service,
            "instance": self.instance,
        }
        for key, value in self.extras(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


class ConsoleFormatter(_Base):
    """``HH:MM:SS.mmm LEVEL logger: msg key=value ...`` for a developer's terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a line of text."""
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        fields = " ".join(f"{k}={v}" for k, v in self.extras(record).items())
        text = f"{ts} {record.levelname:<7} {record.name}: {self.message(record)}"
        if fields:
            text = f"{text}  {fields}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


def configure_logging(settings: ServiceSettings) -> logging.Handler:
    """Send the root logger's records to stderr in the configured format.

    Idempotent: a handler installed by an earlier call is replaced; handlers
    installed by others (pytest's capture, for instance) are left alone.

    Args:
        settings: supplies level, format, PII redaction and the service identity.

    Returns:
        The installed handler.
    """
    formatter_cls = JsonFormatter if settings.log_format == "json" else ConsoleFormatter
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        formatter_cls(
            service=type(settings).service_name,
            instance=settings.instance_id,
            redact_pii=settings.log_redact_pii,
        )
    )
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)
    return handler
