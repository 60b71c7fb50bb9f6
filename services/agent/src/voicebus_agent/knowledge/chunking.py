"""A document cut into passages for retrieval: each small enough to embed and to quote to the
model, each carrying the path of headings it sits under so it still makes sense on its own.

The bound: a passage is `prefix + body`, where `prefix` is the heading path followed by ": "
(e.g. "Opening hours > Holidays: ", empty before the first heading) and `body` is at most
`max_chars` characters. Passages never cross a heading. Paragraphs (blank-line separated) are
packed whole while they fit; a longer one is cut at its list items and sentence ends, a sentence
still too long at whitespace, and a single word longer than `max_chars` is cut hard."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
"""A Markdown (ATX) heading: one to six '#', then space and its text, closing '#'s dropped. A
line like "#1 priority" or "#hashtag" is text, as in Markdown."""
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")
"""A bullet or numbered list item, which starts a unit of its own inside its paragraph."""
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")
"""Whitespace after sentence-ending punctuation, or after a quote or bracket closing on one."""
_EMPHASIS = re.compile(r"\*\*|__|`")
"""Bold markers and code backticks: noise to embeddings, so dropped; their text is kept."""

_Splitter = Callable[[str], list[str]]


@dataclass(frozen=True)
class Chunk:
    """A passage: its heading path ("Opening hours > Holidays", or "") and its body."""

    heading: str
    body: str

    @property
    def text(self) -> str:
        """The passage as embedded and quoted: `prefix + body` (see the module doc)."""
        return f"{self.heading}: {self.body}" if self.heading else self.body


def chunks_of(text: str, *, max_chars: int = 700) -> list[Chunk]:
    """The passages of `text` (plain text or Markdown), in document order; see the module doc
    for the length bound. Deterministic, and never an empty passage."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, not {max_chars}")
    chunks: list[Chunk] = []
    for headings, paragraphs in _sections(text):
        heading = " > ".join(headings)
        pieces = (piece for paragraph in paragraphs for piece in _fitting(paragraph, max_chars))
        chunks.extend(Chunk(heading, body) for body in _packed(pieces, max_chars))
    return chunks


def passages_of(text: str, *, max_chars: int = 700) -> list[str]:
    """The texts of `chunks_of(text)`."""
    return [chunk.text for chunk in chunks_of(text, max_chars=max_chars)]


def _sections(text: str) -> Iterator[tuple[list[str], list[list[str]]]]:
    """Each run of text between headings: the heading path above it and its paragraphs, each
    paragraph as its units (the text before any list item, then each list item), cleaned."""
    path: list[tuple[int, str]] = []
    paragraphs: list[list[str]] = []
    lines: list[str] = []

    def end_paragraph() -> None:
        units = _units(lines)
        if units:
            paragraphs.append(units)
        lines.clear()

    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading is None:
            if line.strip():
                lines.append(line)
            else:
                end_paragraph()
            continue
        end_paragraph()
        if paragraphs:
            yield [title for _, title in path if title], paragraphs
            paragraphs = []
        level = len(heading.group(1))
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, _clean(heading.group(2) or "")))
    end_paragraph()
    if paragraphs:
        yield [title for _, title in path if title], paragraphs


def _units(lines: list[str]) -> list[str]:
    """A paragraph's lines grouped so each list item is one unit with its continuation lines."""
    groups: list[list[str]] = []
    for line in lines:
        if not groups or _LIST_ITEM.match(line):
            groups.append([])
        groups[-1].append(line)
    cleaned = (_clean(" ".join(group)) for group in groups)
    return [unit for unit in cleaned if unit]


def _clean(text: str) -> str:
    """`text` without emphasis markers, its whitespace runs collapsed to single spaces."""
    return " ".join(_EMPHASIS.sub("", text).split())


def _fitting(units: list[str], max_chars: int) -> Iterator[str]:
    """A paragraph as pieces of at most `max_chars`: whole if it fits, else unit by unit."""
    paragraph = " ".join(units)
    if len(paragraph) <= max_chars:
        yield paragraph
        return
    for unit in units:
        yield from _cut(unit, max_chars, [_SENTENCE_END.split, str.split])


def _cut(text: str, max_chars: int, splitters: list[_Splitter]) -> Iterator[str]:
    """`text` cut by the coarsest splitter that gets its parts under `max_chars`, finer ones
    only for parts still too long, and hard at `max_chars` when no splitter is left."""
    if len(text) <= max_chars:
        yield text
    elif splitters:
        split, *finer = splitters
        for part in split(text):
            if part:
                yield from _cut(part, max_chars, finer)
    else:
        yield from (text[start : start + max_chars] for start in range(0, len(text), max_chars))


def _packed(pieces: Iterable[str], max_chars: int) -> Iterator[str]:
    """Consecutive pieces joined by spaces, greedily, into bodies of at most `max_chars`."""
    body = ""
    for piece in pieces:
        if body and len(body) + 1 + len(piece) <= max_chars:
            body = f"{body} {piece}"
            continue
        if body:
            yield body
        body = piece
    if body:
        yield body
