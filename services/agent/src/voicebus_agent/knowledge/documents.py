"""The text of an uploaded knowledge-base document: plain text, Markdown or PDF.

The agent can only retrieve what it can read as text, so anything else (images, office files, a
scanned PDF without a text layer) is refused with a `DocumentError` the uploader can act on."""

from __future__ import annotations

import io
from enum import Enum
from pathlib import PurePath

from pypdf import PdfReader
from pypdf.errors import PyPdfError

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
"""The largest upload read: far beyond any text a phone agent needs, small enough to hold whole."""

SUPPORTED_KINDS = "plain text (.txt), Markdown (.md, .markdown) or PDF (.pdf)"
"""The kinds named to the uploader when a document is refused for its type."""


class DocumentError(ValueError):
    """The document cannot become knowledge-base text; the message says why, for the uploader."""


class _Kind(Enum):
    TEXT = "text"
    """UTF-8 text, Markdown included: its headings are kept for the chunker."""
    PDF = "pdf"


_KIND_BY_CONTENT_TYPE = {
    "text/plain": _Kind.TEXT,
    "text/markdown": _Kind.TEXT,
    "application/pdf": _Kind.PDF,
}
_KIND_BY_EXTENSION = {
    ".txt": _Kind.TEXT,
    ".md": _Kind.TEXT,
    ".markdown": _Kind.TEXT,
    ".pdf": _Kind.PDF,
}


def text_of(name: str, content_type: str | None, data: bytes) -> str:
    """The text of the document `name` uploaded as `data`.

    The kind comes from `content_type` when it is a supported one, else from the file extension:
    browsers often send `application/octet-stream` (or nothing) for a `.md` file."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            f"{name} is {len(data)} bytes, over the limit of {MAX_DOCUMENT_BYTES} bytes (20 MiB)"
        )
    kind = _kind_of(name, content_type)
    if kind is _Kind.PDF:
        return _pdf_text(name, data)
    return _utf8_text(name, data)


def _kind_of(name: str, content_type: str | None) -> _Kind:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    kind = _KIND_BY_CONTENT_TYPE.get(media_type) or _KIND_BY_EXTENSION.get(
        PurePath(name).suffix.lower()
    )
    if kind is None:
        described = f"{name} ({media_type})" if media_type else name
        raise DocumentError(f"{described} is not a supported document: upload {SUPPORTED_KINDS}")
    return kind


def _utf8_text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # a byte-order mark, as some editors write, is not text
    except UnicodeDecodeError as error:
        raise DocumentError(
            f"{name} is not UTF-8 text (undecodable byte at offset {error.start})"
        ) from error


def _pdf_text(name: str, data: bytes) -> str:
    try:
        pages = [page.extract_text().strip() for page in PdfReader(io.BytesIO(data)).pages]
    except PyPdfError as error:
        raise DocumentError(f"{name} is not a readable PDF: {error}") from error
    text = "\n\n".join(page for page in pages if page)
    if not text:
        raise DocumentError(
            f"{name} has no text layer (a scanned PDF?): run it through OCR and upload the result"
        )
    return text
