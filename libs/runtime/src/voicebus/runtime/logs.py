"""Process logging: JSON lines or console text, with personal data redacted centrally.

Log messages are fixed strings. Personal data (phone numbers, transcripts,
DTMF digits, tool arguments) goes only into ``extra=`` fields whose key
contains ``pii``; with ``VB_LOG_REDACT_PII`` on (the default) their values are
written as ``"[redacted]"``::

    log.info("call started", extra={"call_id": cid, **pii(from_number=caller)})
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import SecretBytes, SecretStr

from voicebus.runtime.settings import ServiceSettings

__all__ = ["REDACTED", "ConsoleFormatter", "JsonFormatter", "configure_logging", "pii"]

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
            "msg": record.getMessage(),
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
        text = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"
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
