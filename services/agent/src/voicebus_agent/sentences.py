"""Streamed text cut into sentences, each released the moment it ends, so speech can start on
the first sentence while the model is still writing the rest."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*\s+")
"""Sentence-ending punctuation (and a closing quote or bracket) followed by whitespace: a
number like 3.5 or an address like example.com is not a boundary."""
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "mt", "vs", "etc", "e.g", "i.e", "no", "approx"}
)
"""Words whose period does not end a sentence."""


class SentenceCutter:
    """Collects streamed text; `feed` returns the sentences it completes, `flush` the rest."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> list[str]:
        self._pending += text
        sentences: list[str] = []
        start = 0
        for boundary in _BOUNDARY.finditer(self._pending):
            if self._ends_in_abbreviation(self._pending[start : boundary.start() + 1]):
                continue
            sentence = self._pending[start : boundary.end()].strip()
            if sentence:
                sentences.append(sentence)
            start = boundary.end()
        self._pending = self._pending[start:]
        return sentences

    def flush(self) -> list[str]:
        rest, self._pending = self._pending.strip(), ""
        return [rest] if rest else []

    @staticmethod
    def _ends_in_abbreviation(text: str) -> bool:
        last_word = text.rsplit(maxsplit=1)[-1] if text.strip() else ""
        return last_word.endswith(".") and last_word[:-1].lower() in _ABBREVIATIONS
