"""Knowledge-base documents: every format read into headed paragraphs, chunked for voice,
and found again by BM25."""

from __future__ import annotations

import pytest

from voicebus.contracts.knowledge import DocumentFormat, format_of
from voicebus.orchestrator.errors import DocumentError
from voicebus.orchestrator.kb_chunks import Chunk, chunk_blocks, content_hash, sentences
from voicebus.orchestrator.kb_documents import Block, parse_document
from voicebus.orchestrator.kb_index import LexicalIndex

pytestmark = pytest.mark.unit


def pdf(*lines: str) -> bytes:
    """A one-page PDF showing ``lines`` (Helvetica), with a correct cross-reference table."""
    shown = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    content = f"BT /F1 12 Tf 72 720 Td {shown} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref,
    )  # fmt: skip
    return bytes(out)


def test_markdown_keeps_the_heading_path_of_each_paragraph_and_item() -> None:
    text = (
        b"# Acme\n\nWe open at **nine**. See [the map](https://x.example/map).\n\n"
        b"## Returns\n\n- Refunds take `14` days.\n- Keep the receipt.\n\n"
        b"# Jobs\n\nWe are hiring.\n```\n# not a heading\n```\n"
    )
    assert parse_document(text, DocumentFormat.MARKDOWN) == [
        Block("Acme", "We open at nine. See the map."),
        Block("Acme > Returns", "Refunds take 14 days."),
        Block("Acme > Returns", "Keep the receipt."),
        Block("Jobs", "We are hiring."),
        Block("Jobs", "# not a heading"),
    ]


def test_html_drops_scripts_and_follows_headings() -> None:
    page = (
        b"<html><head><title>T</title><style>p{}</style></head><body><h1>Help</h1>"
        b"<p>Call us <b>any</b> time.</p><script>var x = 1;</script><h2>Hours</h2>"
        b"<ul><li>Mon: 9-5</li><li>Sun: closed</li></ul></body></html>"
    )
    assert parse_document(page, DocumentFormat.HTML) == [
        Block("Help", "Call us any time."),
        Block("Help > Hours", "Mon: 9-5"),
        Block("Help > Hours", "Sun: closed"),
    ]


def test_text_csv_and_json() -> None:
    assert parse_document(b"One.\n\nTwo\nlines.", DocumentFormat.TEXT) == [
        Block("", "One."), Block("", "Two lines."),
    ]  # fmt: skip
    table = b"question,answer\nhours,nine to five\nparking,free\n"
    assert parse_document(table, DocumentFormat.CSV) == [
        Block("", "question: hours. answer: nine to five."),
        Block("", "question: parking. answer: free."),
    ]
    data = b'{"store": "Acme", "faq": [{"q": "hours", "a": "9-5"}], "notes": ["Be kind."]}'
    assert parse_document(data, DocumentFormat.JSON) == [
        Block("", "store: Acme."), Block("faq", "q: hours. a: 9-5."), Block("notes", "Be kind."),
    ]  # fmt: skip


def test_a_pdf_is_read_page_by_page() -> None:
    blocks = parse_document(pdf("Refunds take fourteen days."), DocumentFormat.PDF)
    assert [b.text for b in blocks] == ["Refunds take fourteen days."]


@pytest.mark.parametrize(
    ("data", "fmt", "reason"),
    [
        (b"not a pdf at all", DocumentFormat.PDF, "not a readable PDF"),
        (b'{"a": ', DocumentFormat.JSON, r"not valid JSON: .* \(line 1, column 7\)"),
        (b"a,b\n1,2\n3\n", DocumentFormat.CSV, "line 3: 1 fields, the header has 2"),
        (b"\xff\xfe\x00bad", DocumentFormat.TEXT, r"not UTF-8 text \(byte 0\)"),
        (b"<html><script>x</script></html>", DocumentFormat.HTML, "no text found"),
        (b"\n\n  \n", DocumentFormat.MARKDOWN, "no text found"),
    ],
)
def test_an_unreadable_document_says_why(data: bytes, fmt: DocumentFormat, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason):
        parse_document(data, fmt)


def test_chunks_hold_one_to_three_sentences_of_one_paragraph_with_its_heading() -> None:
    blocks = [
        Block("Store", "One. Two! Three? Four. Five."),
        Block("Store > Returns", "Refunds take 14 days."),
    ]
    digest = content_hash(b"the file")
    chunks = chunk_blocks(blocks, "faq", digest)
    prefix = f"faq.{digest[:8]}"
    assert chunks == [
        Chunk(f"{prefix}.0", "Store", "One. Two! Three?"),
        Chunk(f"{prefix}.1", "Store", "Four. Five."),
        Chunk(f"{prefix}.2", "Store > Returns", "Refunds take 14 days."),
    ]
    assert chunks[2].searchable() == "Store > Returns. Refunds take 14 days."


def test_a_long_sentence_is_cut_at_words_and_chunks_stay_short() -> None:
    long = " ".join(["word"] * 300) + "."
    chunks = chunk_blocks([Block("", long + " Short one.")], "d", "0" * 64, max_chars=100)
    assert all(len(c.text) <= 100 for c in chunks)
    assert " ".join(c.text for c in chunks) == long + " Short one."
    assert sentences("Is it open? Yes. ok") == ["Is it open?", "Yes.", "ok"]


def test_the_chunk_ids_change_with_the_content() -> None:
    blocks = [Block("", "Same text.")]
    one = chunk_blocks(blocks, "d", content_hash(b"v1"))
    two = chunk_blocks(blocks, "d", content_hash(b"v2"))
    assert one[0].chunk_id != two[0].chunk_id
    assert content_hash(b"v1") == content_hash(b"v1")


def test_bm25_finds_stemmed_words_best_first_and_nothing_for_unknown_words() -> None:
    index = LexicalIndex([
        Chunk("a", "Returns", "Refunds take 14 days."),
        Chunk("b", "Hours", "We open at nine on weekdays."),
        Chunk("c", "", "Parking is free; parking is behind the shop."),
    ])  # fmt: skip
    assert [h.chunk.chunk_id for h in index.search("how long does a refund take", 3)] == ["a"]
    assert [h.chunk.chunk_id for h in index.search("returns", 3)] == ["a"]  # the heading
    hits = index.search("parked weekdays", 3)
    assert [h.chunk.chunk_id for h in hits] == ["c", "b"]
    assert hits[0].score > hits[1].score > 0
    assert index.search("zebra", 3) == []
    assert index.search("the", 3) == []
    assert LexicalIndex([]).search("refund", 3) == []


def test_the_format_comes_from_the_suffix_then_the_media_type() -> None:
    assert format_of("faq.MD", "application/octet-stream") is DocumentFormat.MARKDOWN
    assert format_of("notes", "text/plain; charset=utf-8") is DocumentFormat.TEXT
    assert format_of("page.htm", None) is DocumentFormat.HTML
    assert format_of("x.docx", "application/octet-stream") is None
