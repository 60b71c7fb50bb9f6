"""Personal data and secrets out of text that is kept or shown: pure functions over strings.

`redact` replaces what identifies or charges a caller (email addresses, phone numbers, payment
card numbers) by a placeholder; with VOICEBUS_REDACT_PII, analytics keeps, and the live feed
shows, what was said only as redacted (`redact_event`), and every service's log lines pass
through it. `SecretMask` hides what looks like a credential in log lines, always.

Recognized, as speech-to-text writes them (docs/privacy.md says what is missed):

- email addresses, written (`jane.doe@example.com`) or spoken (`jane dot doe at example dot
  com`, with a common top-level domain);
- payment card numbers: 13 to 19 digits, grouped or not, passing the Luhn check (so an order
  number of as many digits is not taken for one);
- phone numbers: `+` and 7 to 15 digits (E.164, grouped any way); any other run of 10 to 15
  digits; and 7 to 9 digits shaped like a local number (`555-1234`), a national one with its
  trunk 0 (`030 123456`), or dictated one digit at a time.

A run of digits may be grouped by single spaces, dashes or dots, a group may be parenthesized
(`(415) 555-0134`), and a digit may be a word (`five five five ...`). Dates (`2025-06-15`,
with a time) and IPv4 addresses are left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

from voicebus_contracts import (
    CallEnded,
    Event,
    FinalTranscript,
    PartialTranscript,
    ReplyCancelled,
    ReplyTextChunk,
    ToolCalled,
    ToolReturned,
)
from voicebus_contracts.agents import SECRET_ENV_PREFIX

EMAIL = "[email]"
PHONE = "[phone]"
CARD = "[card]"
SECRET = "[secret]"

# Each pattern starts only where a word does, and takes whole words (possessive quantifiers):
# a long word that is no address fails at once instead of being tried from each character.
_LOCAL_PART = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL = re.compile(rf"(?<!{_LOCAL_PART}){_LOCAL_PART}++@[\w-]++(?:\.[\w-]++)++")
_TOP_LEVEL_DOMAINS = "com|net|org|edu|gov|io|co|uk|us|ca|au|de|fr|es|it|nl|info|biz|me"
_SPOKEN_EMAIL = re.compile(
    rf"(?<![\w.+-])(?<! dot )[\w.+-]++(?: dot [\w+-]++)*+ at [\w-]++(?:(?: dot |\.)[\w-]++)*?"
    rf"(?: dot |\.)(?:{_TOP_LEVEL_DOMAINS})\b",
    re.IGNORECASE,
)

_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_DIGIT_WORD = "|".join(_DIGIT_WORDS)
_UNIT = rf"(?:\d++|\(\d++\)|(?:{_DIGIT_WORD})\b)"
"""One group of a run of digits: digits, digits in parentheses, or a digit said as a word."""
_KEPT = r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)?|\d{1,3}(?:\.\d{1,3}){3}"
"""An ISO date (and time) and an IPv4 address: digits grouped by dashes, dots and spaces too,
but neither a phone number nor a card."""
_NUMBER = re.compile(
    # Not inside a word or an identifier (`a716-446655440000`), and each group whole: possessive
    # quantifiers, so that a long run is read once, not again from each of its digits.
    rf"(?<![\w+)])(?<!\w[-.])"
    rf"(?:(?P<kept>{_KEPT})(?!\d)|(?P<plus>\+ ?)?{_UNIT}(?:[ .-]?{_UNIT})*+)",
    re.IGNORECASE,
)
_GLUED = re.compile(r"[-.]?\w")
"""What follows a run of digits that is part of a word or identifier (`555-1234abc`)."""
_GROUP = re.compile(rf"\d+|{_DIGIT_WORD}", re.IGNORECASE)

CARD_DIGITS = range(13, 20)
E164_DIGITS = range(7, 16)
"""With a `+`: E.164 allows 15 digits; 7 is the shortest number of a country with its code."""
NATIONAL_DIGITS = range(10, 16)
"""Without a `+`, a run this long is taken for a phone number whatever its grouping."""
SHORT_PHONE_DIGITS = range(7, 10)
"""Shorter runs are a phone number only when grouped like one; shorter than 7, never."""


def redact(text: str) -> str:
    """`text` with each email address, payment card number and phone number replaced by
    `[email]`, `[card]` or `[phone]`."""
    text = _EMAIL.sub(EMAIL, text)
    text = _SPOKEN_EMAIL.sub(EMAIL, text)
    return _NUMBER.sub(_number, text)


def _number(found: re.Match[str]) -> str:
    if found["kept"] is not None or _GLUED.match(found.string, found.end()):
        return found.group()
    groups = [_DIGIT_WORDS.get(g.lower(), g) for g in _GROUP.findall(found.group())]
    digits = "".join(groups)
    plus = found["plus"] is not None
    if not plus and len(digits) in CARD_DIGITS and _luhn_valid(digits):
        return CARD
    if _phone_number(digits, groups, plus=plus):
        return PHONE
    return found.group()


def _luhn_valid(digits: str) -> bool:
    """The check every payment card number passes (ISO/IEC 7812): its last digit makes the
    sum of the digits, every second one from the right doubled (less 9 above 9), end in 0."""
    total = 0
    for place, digit in enumerate(int(d) for d in reversed(digits)):
        doubled = digit * 2 if place % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def _phone_number(digits: str, groups: list[str], *, plus: bool) -> bool:
    if plus:
        return len(digits) in E164_DIGITS
    if len(digits) in NATIONAL_DIGITS:
        return True
    if len(digits) not in SHORT_PHONE_DIGITS:
        return False
    sizes = [len(g) for g in groups]
    local = sizes == [3, 4]
    national = digits.startswith("0") and len(sizes) > 1 and min(sizes) >= 3
    dictated = max(sizes) == 1
    return local or national or dictated


E = TypeVar("E", bound=Event)

_SAID: Mapping[type[Event], str] = {
    FinalTranscript: "text",
    PartialTranscript: "text",
    ReplyTextChunk: "text",
    ReplyCancelled: "heard_text",
    ToolCalled: "arguments",
    ToolReturned: "result",
    CallEnded: "reason",
}
"""The field of each event that says what the caller, the agent's model or its tools said or
wrote (a call's end reason is the model's, when it hangs up)."""


def redact_event(event: E) -> E:
    """`event` with what was said in it redacted; any other event as it is.

    The field stays within its contract's length (a placeholder is longer than the shortest
    email addresses), so the event is one its consumers accept."""
    name = _SAID.get(type(event))
    if name is None:
        return event
    text = redact(getattr(event, name))
    constraints = type(event).model_fields[name].metadata
    limits = [c.max_length for c in constraints if hasattr(c, "max_length")]
    return event.model_copy(update={name: text[: min(limits)] if limits else text})


SECRET_NAME_ENDINGS = ("_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
MIN_SECRET_CHARS = 8
"""Shorter values of secret variables are not masked: they would mask ordinary words and
numbers all over the logs (and are no secret worth the name)."""

_CREDENTIALS = (
    # An Authorization header's value (its scheme and credentials), as text or in a repr.
    (
        re.compile(r"""(\bauthorization["']?\s*[:=]\s*["']?)(?:\w+ +)?[^\s"',}]+""", re.IGNORECASE),
        "\\1",
    ),
    (re.compile(r"(\bbearer\s+)[\w.~+/=-]{8,}", re.IGNORECASE), "\\1"),
    # API keys shaped like OpenAI's (sk-..., sk-proj-...) and Anthropic's (sk-ant-...).
    (re.compile(r"\bsk-[\w-]{16,}"), ""),
    # The password of a URL (postgresql://user:password@host, redis://:password@host).
    (
        re.compile(r"((?<![\w+.-])[a-z][\w+.-]*+://[^\s/:@]*+:)[^\s/@]++(?=@)", re.IGNORECASE),
        "\\1",
    ),
)


class SecretMask:
    """Replaces by `[secret]` what looks like a credential (an Authorization header's value, a
    bearer token, an `sk-` API key, a URL's password) and the values of the secrets in
    `environ`: variables named VOICEBUS_SECRET_* or ending with _API_KEY, _TOKEN, _SECRET or
    _PASSWORD, as they are when the mask is made."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        values = {
            value
            for name, value in environ.items()
            if (name.startswith(SECRET_ENV_PREFIX) or name.upper().endswith(SECRET_NAME_ENDINGS))
            and len(value) >= MIN_SECRET_CHARS
        }
        # Longest first: a secret that contains another is masked whole.
        alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
        self._values = re.compile(alternatives) if alternatives else None

    def __call__(self, text: str) -> str:
        if self._values is not None:
            text = self._values.sub(SECRET, text)
        for pattern, kept in _CREDENTIALS:
            text = pattern.sub(kept + SECRET, text)
        return text
