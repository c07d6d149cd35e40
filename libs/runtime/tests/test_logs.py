"""Logging: JSON lines, console text, PII redaction, secrets never written."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from voicebus.runtime.logs import REDACTED, ConsoleFormatter, JsonFormatter, configure_logging, pii
from voicebus.runtime.settings import ServiceSettings

pytestmark = pytest.mark.unit


def _record(msg: str = "call started", **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("voicebus.test", logging.INFO, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def _json(redact: bool, **extra: object) -> dict[str, object]:
    formatter = JsonFormatter(service="demo", instance="demo-1", redact_pii=redact)
    line = formatter.format(_record(**extra))
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_json_line_has_the_fixed_fields() -> None:
    line = _json(True, call_id="c1", seq=3)
    assert line["msg"] == "call started"
    assert line["level"] == "INFO"
    assert line["logger"] == "voicebus.test"
    assert (line["service"], line["instance"]) == ("demo", "demo-1")
    assert str(line["ts"]).endswith("+00:00")
    assert (line["call_id"], line["seq"]) == ("c1", 3)


def test_pii_fields_are_redacted() -> None:
    line = _json(True, pii_from="+14155550100", transcript_pii="my card is 4242", call_id="c1")
    assert line["pii_from"] == REDACTED
    assert line["transcript_pii"] == REDACTED
    assert line["call_id"] == "c1"
    assert "+14155550100" not in json.dumps(line)


def test_pii_fields_are_kept_when_redaction_is_off() -> None:
    line = _json(False, pii_from="+14155550100")
    assert line["pii_from"] == "+14155550100"


def test_secret_looking_fields_are_always_redacted() -> None:
    line = _json(False, api_token="tok-123", db_password="pw", key=SecretStr("s3cr3t"))
    assert line["api_token"] == line["db_password"] == line["key"] == REDACTED


def test_pii_helper_marks_keys() -> None:
    assert pii(phone="+1", pii_digits="12") == {"pii_phone": "+1", "pii_digits": "12"}


def test_exception_is_one_json_field() -> None:
    formatter = JsonFormatter(service="demo", instance="i", redact_pii=True)
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(formatter.format(record))
    assert "ValueError: boom" in line["exc"]


def test_console_format_redacts_too() -> None:
    formatter = ConsoleFormatter(service="demo", instance="i", redact_pii=True)
    text = formatter.format(_record(pii_phone="+14155550100", call_id="c1"))
    assert "call started" in text
    assert "call_id=c1" in text
    assert "+14155550100" not in text
    assert f"pii_phone={REDACTED}" in text


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_configure_logging_is_idempotent(
    clean_env: pytest.MonkeyPatch,
    settings_cls: type[ServiceSettings],
    restore_root: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings_cls(log_level="WARNING", instance_id="demo-7")
    first = configure_logging(settings)
    second = configure_logging(settings)
    root = logging.getLogger()
    assert first not in root.handlers
    assert second in root.handlers
    assert root.level == logging.WARNING
    logging.getLogger("voicebus.test").warning("caller identified", extra=pii(phone="+14155550100"))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    line = json.loads(err[0])
    assert line["msg"] == "caller identified"
    assert (line["service"], line["instance"]) == ("demo", "demo-7")
    assert line["pii_phone"] == REDACTED
