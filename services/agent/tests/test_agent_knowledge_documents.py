import io
import re

import pytest
from pypdf import PdfWriter

from voicebus_agent.knowledge.chunking import passages_of
from voicebus_agent.knowledge.documents import MAX_DOCUMENT_BYTES, DocumentError, text_of


def pdf_with_text(*pages: str) -> bytes:
    """A minimal valid PDF, written by hand: one Helvetica text line per page."""
    page_ids = [4 + 2 * index for index in range(len(pages))]
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % page_id for page_id in page_ids), len(pages)),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id, text in zip(page_ids, pages, strict=True):
        stream = b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1")
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
            b" /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for object_id in sorted(objects):
        offsets[object_id] = len(pdf)
        pdf += b"%d 0 obj\n%s\nendobj\n" % (object_id, objects[object_id])
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offsets[object_id] for object_id in sorted(objects))
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(pdf)


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- text_of -------------------------------------------------------------------------------


def test_plain_text_is_decoded_as_utf8() -> None:
    assert text_of("hours.txt", "text/plain", "Café opens at 9.".encode()) == "Café opens at 9."


def test_markdown_is_returned_with_its_headings_for_the_chunker() -> None:
    data = b"# Opening hours\n\nWe open at nine.\n"
    assert text_of("faq.md", "text/markdown", data) == data.decode()


@pytest.mark.parametrize("name", ["faq.md", "FAQ.MD", "faq.markdown", "notes.txt"])
def test_the_extension_decides_when_the_content_type_says_nothing(name: str) -> None:
    assert text_of(name, "application/octet-stream", b"hello") == "hello"
    assert text_of(name, None, b"hello") == "hello"


def test_the_content_type_decides_before_the_extension() -> None:
    assert text_of("export.bin", "text/plain; charset=utf-8", b"hello") == "hello"
    assert text_of("download", "Application/PDF", pdf_with_text("Hello")) == "Hello"


def test_a_byte_order_mark_is_not_part_of_the_text() -> None:
    assert text_of("notes.txt", None, b"\xef\xbb\xbfhello") == "hello"


def test_text_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(DocumentError, match=r"notes\.txt is not UTF-8 text"):
        text_of("notes.txt", "text/plain", "café".encode("latin-1"))


def test_a_pdf_gives_the_text_of_every_page_separated_by_blank_lines() -> None:
    data = pdf_with_text("Opening hours: nine to five.", "Parking is free.")
    expected = "Opening hours: nine to five.\n\nParking is free."
    assert text_of("guide.pdf", "application/pdf", data) == expected
    assert text_of("guide.pdf", None, data) == expected


def test_a_pdf_without_a_text_layer_is_refused() -> None:
    with pytest.raises(DocumentError, match=r"scan\.pdf has no text layer"):
        text_of("scan.pdf", "application/pdf", blank_pdf())


def test_bytes_that_are_not_a_pdf_are_refused_as_unreadable() -> None:
    with pytest.raises(DocumentError, match=r"broken\.pdf is not a readable PDF"):
        text_of("broken.pdf", "application/pdf", b"this is not a PDF")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("photo.png", "image/png"), ("report.docx", None), ("README", None)],
)
def test_an_unsupported_kind_is_refused_naming_the_supported_ones(
    name: str, content_type: str | None
) -> None:
    with pytest.raises(DocumentError) as refused:
        text_of(name, content_type, b"\x89PNG")
    message = str(refused.value)
    assert name in message
    for supported in (".txt", ".md", ".markdown", ".pdf"):
        assert supported in message


def test_a_document_over_the_size_limit_is_refused() -> None:
    assert text_of("big.txt", None, b"a" * MAX_DOCUMENT_BYTES) == "a" * MAX_DOCUMENT_BYTES
    with pytest.raises(DocumentError, match=r"over the limit of 20971520 bytes \(20 MiB\)"):
        text_of("big.txt", None, b"a" * (MAX_DOCUMENT_BYTES + 1))


def test_document_errors_are_value_errors() -> None:
    assert issubclass(DocumentError, ValueError)


# --- passages_of ---------------------------------------------------------------------------


def bodies(passages: list[str], prefix: str) -> list[str]:
    """The passages' text after their heading prefix, which each must carry."""
    assert all(passage.startswith(prefix) for passage in passages), passages
    return [passage.removeprefix(prefix) for passage in passages]


def test_text_without_headings_is_one_passage_when_it_fits() -> None:
    assert passages_of("We open at nine.\nWe close at five.") == [
        "We open at nine. We close at five."
    ]


def test_a_passage_is_prefixed_with_its_heading() -> None:
    assert passages_of("# Opening hours\n\nWe open at nine.") == ["Opening hours: We open at nine."]


def test_the_prefix_is_the_path_of_headings_down_to_the_innermost() -> None:
    text = (
        "# Salon\n"
        "Welcome.\n"
        "## Opening hours\n"
        "Nine to five.\n"
        "### Holidays\n"
        "Closed.\n"
        "## Parking\n"
        "Free, behind the shop.\n"
        "# Contact\n"
        "Call us.\n"
    )
    assert passages_of(text) == [
        "Salon: Welcome.",
        "Salon > Opening hours: Nine to five.",
        "Salon > Opening hours > Holidays: Closed.",
        "Salon > Parking: Free, behind the shop.",
        "Contact: Call us.",
    ]


def test_text_before_the_first_heading_has_no_prefix() -> None:
    assert passages_of("Intro.\n\n# Prices\n\nTen euros.") == ["Intro.", "Prices: Ten euros."]


def test_a_heading_loses_its_markers_and_emphasis() -> None:
    assert passages_of("##  **Opening**   `hours` ##\nNine.") == ["Opening hours: Nine."]


def test_a_heading_without_text_pops_deeper_headings_but_adds_none() -> None:
    assert passages_of("# Salon\n## Hours\nNine.\n##\nMore.") == [
        "Salon > Hours: Nine.",
        "Salon: More.",
    ]


def test_a_hash_without_a_space_is_text_not_a_heading() -> None:
    assert passages_of("#1 priority is you.\n#welcome") == ["#1 priority is you. #welcome"]


def test_a_section_with_only_headings_gives_no_passage() -> None:
    assert passages_of("# Salon\n\n## Hours\n\n## Parking\nFree.") == ["Salon > Parking: Free."]


def test_emphasis_markers_are_dropped_and_their_text_kept() -> None:
    assert passages_of("**Bold**, __strong__, `code` and 3 * 4 = 12.") == [
        "Bold, strong, code and 3 * 4 = 12."
    ]


def test_whitespace_runs_collapse_to_single_spaces() -> None:
    assert passages_of("  We\topen \u00a0 at\r\n   nine.  ") == ["We open at nine."]


@pytest.mark.parametrize("text", ["", "\n\n  \n", "# Only a heading", "**\n\n``\n__"])
def test_nothing_to_say_gives_no_passages(text: str) -> None:
    assert passages_of(text) == []


def test_paragraphs_are_packed_greedily_up_to_max_chars() -> None:
    first, second, third = "a" * 30 + ".", "b" * 30 + ".", "c" * 30 + "."
    text = f"{first}\n\n{second}\n\n{third}"
    assert passages_of(text, max_chars=63) == [f"{first} {second}", third]
    assert passages_of(text, max_chars=62) == [first, second, third]


def test_packing_never_crosses_a_heading() -> None:
    assert passages_of("# A\none\n# B\ntwo", max_chars=700) == ["A: one", "B: two"]


def test_a_long_paragraph_is_cut_at_sentence_ends() -> None:
    sentences = [
        f"Sentence number {n} is here!" if n % 2 else f"Is {n} a question?" for n in range(12)
    ]
    passages = passages_of(" ".join(sentences), max_chars=60)
    assert len(passages) > 1
    assert all(len(passage) <= 60 for passage in passages)
    assert all(passage[-1] in "!?" for passage in passages)
    assert " ".join(passages) == " ".join(sentences)


def test_a_closing_quote_stays_with_its_sentence() -> None:
    text = 'She said "we open at nine." Then she left the shop for the day.'
    assert passages_of(text, max_chars=40) == [
        'She said "we open at nine."',
        "Then she left the shop for the day.",
    ]


def test_a_decimal_point_is_not_a_sentence_end() -> None:
    text = "A haircut costs 12.50 euros today. Colouring costs more."
    assert passages_of(text, max_chars=40) == [
        "A haircut costs 12.50 euros today.",
        "Colouring costs more.",
    ]


def test_a_sentence_longer_than_max_chars_is_cut_at_whitespace() -> None:
    words = [f"word{n}" for n in range(40)]
    passages = passages_of(" ".join(words), max_chars=30)
    assert all(len(passage) <= 30 for passage in passages)
    assert [word for passage in passages for word in passage.split()] == words


def test_a_word_longer_than_max_chars_is_cut_hard() -> None:
    assert passages_of("x" * 50, max_chars=20) == ["x" * 20, "x" * 20, "x" * 10]


def test_list_items_stay_with_their_paragraph() -> None:
    text = "We offer:\n- haircuts\n* colouring\n+ shaves\n1. beards\n2) nails\n\nBook online."
    assert passages_of(text) == [
        "We offer: - haircuts * colouring + shaves 1. beards 2) nails Book online."
    ]


def test_a_list_too_long_for_one_passage_is_cut_between_its_items() -> None:
    items = [f"- service number {n}, done by hand" for n in range(8)]
    passages = passages_of("Services:\n" + "\n".join(items), max_chars=80)
    assert len(passages) > 1
    assert passages[0].startswith("Services: - service number 0")
    assert all(passage.startswith("- ") for passage in passages[1:])
    assert " ".join(passages) == "Services: " + " ".join(items)


def test_a_list_item_continued_on_the_next_line_is_one_item() -> None:
    text = "- a long item\n  continued here\n- another item"
    assert passages_of(text, max_chars=28) == ["- a long item continued here", "- another item"]


def section_text(n: int) -> str:
    """Paragraphs of every shape: short, many sentences, a list, an unpunctuated run, and a
    word too long for any small passage; their sizes grow with `n`."""
    return "\n\n".join(
        [
            f"Short paragraph {n}.",
            " ".join(f"Sentence {m} of section {n} says something useful." for m in range(n * 3)),
            "\n".join(f"- item {m} of section {n}" for m in range(n)),
            "unpunctuated " * (n * 7) + "x" * (n * 40),
        ]
    )


def guide(sections: int) -> str:
    """A Markdown guide: sections of `section_text` under one title."""
    return "# Guide\n\n" + "\n\n".join(
        f"## Section {n}\n\n{section_text(n)}" for n in range(sections)
    )


@pytest.mark.parametrize("max_chars", [1, 25, 80, 200, 700])
def test_every_body_after_its_heading_prefix_is_at_most_max_chars(max_chars: int) -> None:
    text = guide(sections=6)
    passages = passages_of(text, max_chars=max_chars)
    for n in range(6):
        prefix = f"Guide > Section {n}: "
        section = [passage for passage in passages if passage.startswith(prefix)]
        assert section, n
        assert all(0 < len(body) <= max_chars for body in bodies(section, prefix))
    assert all(re.match(r"Guide > Section \d: ", passage) for passage in passages)


@pytest.mark.parametrize("max_chars", [1, 25, 80, 700])
def test_passages_keep_all_the_text_in_order(max_chars: int) -> None:
    text = "\n\n".join(section_text(n) for n in range(5))
    assert "".join(passages_of(text, max_chars=max_chars)).replace(" ", "") == re.sub(
        r"\s", "", text
    )


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars must be positive"):
        passages_of("text", max_chars=0)
