"""Contact files, one chunk at a time. Pure: bytes in, rows and row errors out.

A chunk holds whole lines and knows the file line number of its first line,
so every error names the line it came from. Each line is decoded on its own:
a line that is not UTF-8 is reported, and the lines around it still load.
CSV may use commas or semicolons (told from the header) and may start with
a UTF-8 byte-order mark. JSON is one object per line (JSON Lines); the
brackets and trailing commas of a pretty array with one object per line are
accepted too.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from typing import Any

from voicebus.campaigns import phones
from voicebus.contracts.campaigns import RowError, UploadFormat

PHONE_COLUMNS = ("phone", "phone_number", "number", "to", "msisdn", "mobile", "tel")
BOM = b"\xef\xbb\xbf"
_KEY = re.compile(r"[^A-Za-z0-9_]+")
MAX_CONTEXT_VALUE = 1024


class UploadError(ValueError):
    """The whole chunk is unusable (no header, no phone column)."""


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A good row: where it was, the number, and its context variables."""

    line: int
    number: phones.Number
    context: dict[str, str]


@dataclass(slots=True)
class ChunkResult:
    """What one chunk gave."""

    rows: list[ContactRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    header: str | None = None
    read: int = 0


def context_key(name: str) -> str:
    """A column name as a template variable: ``First Name`` → ``first_name``."""
    return _KEY.sub("_", name.strip()).strip("_").lower()


def _split_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


class _Csv:
    def __init__(self, header: str) -> None:
        self.delimiter = ";" if header.count(";") > header.count(",") else ","
        names = next(csv.reader([header], delimiter=self.delimiter))
        self.names = [context_key(n) for n in names]
        lowered = [n.strip().lower() for n in names]
        phone = next((i for i, n in enumerate(lowered) if n in PHONE_COLUMNS), None)
        if phone is None:
            raise UploadError(f"the header has no phone column (one of {', '.join(PHONE_COLUMNS)})")
        self.phone = phone

    def fields(self, text: str) -> dict[str, str] | str:
        values = next(csv.reader([text], delimiter=self.delimiter), [])
        if len(values) != len(self.names):
            return f"expected {len(self.names)} columns, found {len(values)}"
        return dict(zip(self.names, values, strict=True))


def _json_fields(text: str) -> dict[str, Any] | str | None:
    body = text.strip().rstrip(",").strip()
    if body in ("", "[", "]"):
        return None
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg})"
    if not isinstance(value, dict):
        return "not a JSON object"
    return value


def _row(
    line: int, values: dict[str, Any], phone_key: str | None, region: str | None
) -> ContactRow | RowError:
    key = phone_key or next((k for k in values if k.strip().lower() in PHONE_COLUMNS), None)
    raw = values.get(key) if key is not None else None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return RowError(line=line, reason="missing column phone")
    try:
        number = phones.parse(str(raw), region)
    except phones.InvalidNumberError as exc:
        return RowError(line=line, reason=str(exc))
    context: dict[str, str] = {}
    for name, value in values.items():
        if name == key or value is None or value == "":
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        context[context_key(name)] = text[:MAX_CONTEXT_VALUE]
    return ContactRow(line, number, context)


def parse_chunk(
    data: bytes,
    fmt: UploadFormat,
    first_line: int,
    header: str | None,
    default_region: str | None = "US",
) -> ChunkResult:
    """Parse whole lines of a contact file.

    Args:
        data: the chunk's bytes (whole lines).
        fmt: CSV or JSON Lines.
        first_line: line number of the chunk's first line in the file.
        header: the CSV header from an earlier chunk; None when this chunk starts the file.
        default_region: region for numbers written without ``+``.

    Raises:
        UploadError: a CSV without a usable header.
    """
    if first_line == 1 and data.startswith(BOM):
        data = data[len(BOM) :]
    result = ChunkResult(header=header)
    lines = _split_lines(data)
    parser: _Csv | None = None
    start = 0
    if fmt is UploadFormat.CSV:
        if header is None:
            if not lines:
                raise UploadError("the file is empty")
            try:
                header = lines[0].decode("utf-8")
            except UnicodeDecodeError:
                raise UploadError("the header line is not valid UTF-8") from None
            start = 1
        parser = _Csv(header)
        result.header = header
    for index in range(start, len(lines)):
        line_no = first_line + index
        raw = lines[index]
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            result.read += 1
            result.errors.append(RowError(line=line_no, reason="not valid UTF-8"))
            continue
        values: dict[str, Any] | str | None
        values = parser.fields(text) if parser is not None else _json_fields(text)
        if values is None:
            continue
        result.read += 1
        if isinstance(values, str):
            result.errors.append(RowError(line=line_no, reason=values))
            continue
        phone_key = parser.names[parser.phone] if parser is not None else None
        row = _row(line_no, values, phone_key, default_region)
        if isinstance(row, RowError):
            result.errors.append(row)
        else:
            result.rows.append(row)
    return result
