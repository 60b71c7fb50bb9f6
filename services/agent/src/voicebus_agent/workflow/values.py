"""Reading a workflow's variables from the caller's words without a model: choices by their
words, numbers in digits or words, days as people say them, and free text when it was asked for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from voicebus_contracts.agents import Variable

_COUNTING = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS = {word: str(value) for value, word in enumerate(_COUNTING.split())}
_NUMBER = re.compile(r"\b(\d+|" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
)
_ORDINAL = r"\d{1,2}(?:st|nd|rd|th)?"
_DAY = re.compile(
    "|".join(
        (
            r"\b(?:the day after )?tomorrow\b",
            r"\btoday\b|\btonight\b",
            rf"\b(?:(?:this|next) )?{_WEEKDAY}\b",
            rf"\b{_MONTH} (?:the )?{_ORDINAL}\b",
            rf"\b(?:the )?{_ORDINAL} of {_MONTH}\b",
        )
    ),
    re.IGNORECASE,
)


def values_heard(variables: Sequence[Variable], text: str, *, asking: str | None) -> dict[str, str]:
    """The values of `variables` that the caller's `text` gives; `asking` is the variable the
    agent just asked for (free text is taken only for it, and a number only for it when the
    node wants several numbers)."""
    numbers = [v for v in variables if v.kind == "number" and not v.choices]
    heard: dict[str, str] = {}
    day = _DAY.search(text)
    rest = text if day is None else text[: day.start()] + text[day.end() :]
    for variable in variables:
        if variable.choices:
            value = _choice(variable.choices, text)
        elif variable.kind == "date":
            value = day.group(0) if day else None
        elif variable.kind == "number":
            asked = variable.name == asking
            value = _number(rest, asked=asked) if asked or len(numbers) == 1 else None
        else:
            value = text.strip(" .!?") if variable.name == asking else None
        if value:
            heard[variable.name] = value
    return heard


def _number(text: str, *, asked: bool) -> str | None:
    """The first number in the text; "one" only when a number was asked for ("a large one")."""
    for found in _NUMBER.finditer(text):
        word = found.group(1).lower()
        if word != "one" or asked:
            return _NUMBER_WORDS.get(word, word)
    return None


def _choice(choices: Sequence[str], text: str) -> str | None:
    """The one choice the text names, in full or, when no choice is named in full, by a last
    word no other choice shares ("dinghy" for "sailing dinghy"), plurals included; None when it
    names none or several."""
    said = set(re.findall(r"[a-z']+", text.lower()))
    words = " ".join(re.findall(r"[a-z']+", text.lower()))
    named = [c for c in choices if re.search(rf"\b{re.escape(c.lower())}(?:s|es)?\b", words)]
    if not named:
        last = [c.lower().split()[-1] for c in choices]
        named = [
            c
            for c, word in zip(choices, last, strict=True)
            if last.count(word) == 1 and _forms(word) & said
        ]
    return named[0] if len(named) == 1 else None


def _forms(word: str) -> set[str]:
    forms = {word, word + "s", word + "es"}
    if word.endswith("y"):
        forms.add(word[:-1] + "ies")
    return forms
