"""Reading knowledge-base documents into headed paragraphs. Pure.

Every format becomes a list of :class:`Block`: one paragraph (or list item, table
row, record) with the heading path it sits under (``"Returns > Refunds"``), which
:mod:`.kb_chunks` cuts into voice-sized chunks. A document that cannot be read is a
:class:`DocumentError` saying why (and, for CSV and JSON, where).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Final

from voicebus.contracts.knowledge import DocumentFormat
from voicebus.orchestrator.errors import DocumentError

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"(\*\*|__|`+|~~)")
_MD_FENCE = re.compile(r"^\s*(```|~~~)")
_SPACES = re.compile(r"\s+")
_SEPARATOR: Final = " > "
_MAX_DEPTH: Final = 6


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph of a document and the heading path above it (may be empty)."""

    heading: str
    text: str


def parse_document(data: bytes, fmt: DocumentFormat) -> list[Block]:
    """The paragraphs of a document, in order.

    Raises:
        DocumentError: the bytes are not a readable ``fmt`` document, or hold no text.
    """
    blocks = [b for b in _PARSERS[fmt](data) if b.text]
    if not blocks:
        raise DocumentError("no text found in the document")
    return blocks


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not UTF-8 text (byte {exc.start})") from None


def _paragraphs(text: str, heading: str = "") -> Iterator[Block]:
    for part in re.split(r"\n\s*\n", text):
        yield Block(heading, _clean(part))


def _plain(data: bytes) -> list[Block]:
    return list(_paragraphs(_text(data)))


def _markdown(data: bytes) -> list[Block]:
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    fenced = False

    def flush() -> None:
        if lines:
            text = _MD_MARKS.sub("", _MD_LINK.sub(r"\1", " ".join(lines)))
            blocks.append(Block(_SEPARATOR.join(t for _, t in path), _clean(text)))
            lines.clear()

    for line in _text(data).splitlines():
        if _MD_FENCE.match(line):
            fenced = not fenced
            flush()
            continue
        heading = None if fenced else _MD_HEADING.match(line)
        if heading is not None:
            flush()
            level = len(heading.group(1))
            path = [(lv, t) for lv, t in path if lv < level]
            path.append((level, _clean(_MD_MARKS.sub("", heading.group(2)))))
        elif not line.strip():
            flush()
        elif _MD_ITEM.match(line) and not fenced:
            flush()
            lines.append(_MD_ITEM.sub("", line))
        else:
            lines.append(line)
    flush()
    return blocks


class _Html(HTMLParser):
    _SKIP: Final = frozenset({"script", "style", "template", "noscript", "head", "svg"})
    _BREAK: Final = frozenset(
        {"p", "div", "li", "tr", "br", "section", "article", "blockquote", "pre", "dd", "dt",
         "table", "ul", "ol", "main", "header", "footer", "aside", "nav", "td", "th"}
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._path: list[tuple[int, str]] = []
        self._text: list[str] = []
        self._skipping = 0
        self._heading: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = int(tag[1])
        elif tag in self._BREAK:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            title, level = _clean("".join(self._text)), self._heading
            self._text.clear()
            self._heading = None
            self._path = [(lv, t) for lv, t in self._path if lv < level]
            if title:
                self._path.append((level, title))
        elif tag in self._BREAK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._text.append(data)

    def _flush(self) -> None:
        if self._heading is None and self._text:
            heading = _SEPARATOR.join(t for _, t in self._path)
            self.blocks.append(Block(heading, _clean("".join(self._text))))
            self._text.clear()

    def close(self) -> None:
        super().close()
        self._heading = None
        self._flush()


def _html(data: bytes) -> list[Block]:
    parser = _Html()
    parser.feed(_text(data))
    parser.close()
    return parser.blocks


def _pdf(data: bytes) -> list[Block]:
    # Imported here: it takes a second or more, and only uploads of PDFs need it.
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    # pypdf logs malformed-but-readable files at WARNING; nothing of ours to report.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    blocks: list[Block] = []
    for text in pages:
        blocks.extend(_paragraphs(text))
    return blocks


def _csv(data: bytes) -> list[Block]:
    rows = csv.reader(io.StringIO(_text(data), newline=""))
    try:
        header = [_clean(h) for h in next(rows)]
    except StopIteration:
        return []
    except csv.Error as exc:
        raise DocumentError(f"line 1: {exc}") from None
    blocks: list[Block] = []
    try:
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DocumentError(
                    f"line {rows.line_num}: {len(row)} fields, the header has {len(header)}"
                )
            pairs = [f"{h}: {_clean(v)}" for h, v in zip(header, row, strict=True) if v.strip()]
            blocks.append(Block("", ". ".join(pairs) + "."))
    except csv.Error as exc:
        raise DocumentError(f"line {rows.line_num}: {exc}") from None
    return blocks


def _json(data: bytes) -> list[Block]:
    try:
        value = json.loads(_text(data))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise DocumentError(f"not valid JSON: {exc.msg} ({where})") from None
    blocks: list[Block] = []
    _walk(value, [], blocks)
    return blocks


def _scalar(value: Any) -> str:
    return "" if value is None else _clean(str(value))


def _walk(value: Any, path: list[str], out: list[Block]) -> None:
    heading = _SEPARATOR.join(path[-_MAX_DEPTH:])
    if isinstance(value, dict):
        flat = {k: v for k, v in value.items() if not isinstance(v, dict | list)}
        if flat:
            pairs = [f"{k}: {_scalar(v)}" for k, v in flat.items() if _scalar(v)]
            if pairs:
                out.append(Block(heading, ". ".join(pairs) + "."))
        for key, item in value.items():
            if isinstance(item, dict | list):
                _walk(item, [*path, str(key)], out)
    elif isinstance(value, list):
        for item in value:
            _walk(item, path, out)
    elif _scalar(value):
        out.append(Block(heading, _scalar(value)))


_PARSERS: Final[dict[DocumentFormat, Callable[[bytes], list[Block]]]] = {
    DocumentFormat.MARKDOWN: _markdown,
    DocumentFormat.TEXT: _plain,
    DocumentFormat.HTML: _html,
    DocumentFormat.PDF: _pdf,
    DocumentFormat.CSV: _csv,
    DocumentFormat.JSON: _json,
}
