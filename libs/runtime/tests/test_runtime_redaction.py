"""Redaction of personal data: email addresses, phone numbers and card numbers as speech-to-text
writes them are replaced by placeholders, whatever their form (Hypothesis generates them), and
ordinary sentences with short numbers, dates, times and prices are left as they are."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebus_contracts import (
    CallEnded,
    FinalTranscript,
    PartialTranscript,
    ReplyCancelled,
    ReplyTextChunk,
    SpeechStarted,
    ToolCalled,
    ToolReturned,
)
from voicebus_runtime.redaction import CARD, EMAIL, PHONE, redact, redact_event

DIGITS = "0123456789"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SEPARATORS = st.sampled_from([" ", "-"])


def said(placeholder_or_value: str) -> str:
    return f"sure, it is {placeholder_or_value} thanks"


def grouped(digits: str, sizes: list[int], separator: str) -> str:
    """`digits` cut into groups of `sizes` (the last taking the rest), joined by `separator`."""
    groups, start = [], 0
    for size in sizes:
        if start < len(digits):
            groups.append(digits[start : start + size])
            start += size
    groups[-1] += digits[start:]
    return separator.join(groups)


def luhn_check_digit(body: str) -> str:
    """The digit that makes `body` + it a valid card number."""
    total = 0
    for place, digit in enumerate(int(d) for d in reversed(body)):
        doubled = digit * 2 if place % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return str(-total % 10)


@st.composite
def north_american_phones(draw: st.DrawFn) -> str:
    area, exchange = draw(st.integers(200, 999)), draw(st.integers(200, 999))
    line = f"{draw(st.integers(0, 9999)):04}"
    form = draw(
        st.sampled_from(
            [
                "({a}) {e}-{n}",
                "{a}-{e}-{n}",
                "{a}.{e}.{n}",
                "{a} {e} {n}",
                "1-{a}-{e}-{n}",
                "+1 {a} {e} {n}",
                "+1 ({a}) {e}-{n}",
                "{a}{e}{n}",
                "{e}-{n}",
            ]
        )
    )
    return form.format(a=area, e=exchange, n=line)


@st.composite
def international_phones(draw: st.DrawFn) -> str:
    """E.164: a `+`, a country code, 7 to 15 digits in all, grouped any way."""
    country = str(draw(st.integers(1, 999)))
    length = draw(st.integers(max(7, len(country) + 4), 15))
    subscriber = draw(
        st.text(DIGITS, min_size=length - len(country), max_size=length - len(country))
    )
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=6))
    separator = draw(st.sampled_from([" ", "-", ""]))
    return f"+{country} {grouped(subscriber, sizes, separator)}"


@st.composite
def national_phones(draw: st.DrawFn) -> str:
    """With the trunk 0 (`020 7946 0958`, `06 12 34 56 78`, `030 123456`): 10 or 11 digits in
    any groups, or 7 to 9 in groups of 3 or more."""
    if draw(st.booleans()):
        digits = "0" + draw(st.text(DIGITS, min_size=9, max_size=10))
        sizes = draw(st.lists(st.integers(2, 5), min_size=1, max_size=5))
    else:
        digits = "0" + draw(st.text(DIGITS, min_size=6, max_size=8))
        sizes = [3, 3]
    return grouped(digits, sizes, " ")


def dictated_phones() -> st.SearchStrategy[str]:
    """Digits said one at a time, as words or as digits: 7 to 12 of them."""
    digit = st.sampled_from(DIGIT_WORDS) | st.sampled_from(list(DIGITS))
    return st.lists(digit, min_size=7, max_size=12).map(" ".join)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """A valid card number of 13 to 19 digits, written whole, in groups of 4 (spaces or
    dashes) or dictated digit by digit."""
    body = draw(st.text(DIGITS, min_size=12, max_size=18))
    number = body + luhn_check_digit(body)
    match draw(st.sampled_from(["whole", "groups", "dictated"])):
        case "whole":
            return number
        case "groups":
            return grouped(number, [4] * 5, draw(SEPARATORS))
        case _:
            return " ".join(DIGIT_WORDS[int(d)] for d in number)


@given(st.emails())
def test_every_written_email_address_is_redacted(address: str) -> None:
    assert redact(said(address)) == said(EMAIL)


@given(north_american_phones() | international_phones() | national_phones() | dictated_phones())
def test_every_phone_number_is_redacted(number: str) -> None:
    assert redact(said(number)) == said(PHONE)


@given(card_numbers())
def test_every_valid_card_number_is_redacted(number: str) -> None:
    assert redact(said(number)) == said(CARD)


WORDS = ("table", "for", "people", "order", "please", "my", "is", "the", "at", "pm", "room")
SHORT_NUMBERS = (
    st.integers(0, 999_999).map(str)
    | st.builds("{}:{:02}".format, st.integers(0, 23), st.integers(0, 59))
    | st.builds("${}.{:02}".format, st.integers(0, 9_999), st.integers(0, 99))
    | st.dates().map(str)
)


@given(st.lists(st.tuples(st.sampled_from(WORDS), SHORT_NUMBERS | st.just("")), min_size=1))
def test_sentences_with_short_numbers_dates_times_and_prices_are_left_alone(
    pieces: list[tuple[str, str]],
) -> None:
    sentence = " ".join(f"{word} {number}".strip() for word, number in pieces)
    assert redact(sentence) == sentence


@given(
    st.lists(
        card_numbers()
        | national_phones()
        | st.sampled_from(["jane.doe@example.com", "jane dot doe at example dot com", *WORDS]),
        max_size=4,
    )
)
def test_redacting_twice_changes_nothing_more(pieces: list[str]) -> None:
    once = redact(" and ".join(pieces))
    assert redact(once) == once


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("my email is Jane.Doe@example.co.uk.", f"my email is {EMAIL}."),
        ("it's jane dot doe at gmail dot com", f"it's {EMAIL}"),
        ("jane.doe at example.org works", f"{EMAIL} works"),
        ("call me at (415) 555-0134, please", f"call me at {PHONE}, please"),
        ("it's 555-1234.", f"it's {PHONE}."),
        ("+44 (0) 20 7946 0958", PHONE),
        ("0049 30 1234567", PHONE),
        ("five five five zero one three four", PHONE),
        ("the card is 3782 822463 10005 ok", f"the card is {CARD} ok"),
        ("pressed 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", f"pressed {CARD}"),
        # Not a card: the Luhn check fails; too long for a phone number.
        ("order 4111 1111 1111 1112", "order 4111 1111 1111 1112"),
        ("order 12345", "order 12345"),
        ("two people", "two people"),
        ("table for 4 at 7 30", "table for 4 at 7 30"),
        ("one more thing: two or three", "one more thing: two or three"),
        ("on 2025-06-15 12:00:00 from 192.168.100.200:8080", None),
        ("call 550e8400-e29b-41d4-a716-446655440000 of CA1234567890abcdef", None),
        ("a million is 1,000,000 and pi 3.14", None),
        ("born 01-02-1990", None),
    ],
)
def test_what_is_and_is_not_redacted(text: str, redacted: str | None) -> None:
    assert redact(text) == (text if redacted is None else redacted)


def test_what_was_said_in_an_event_is_redacted_and_nothing_else() -> None:
    email = "jane@example.com"
    assert redact_event(FinalTranscript(turn_id="t1", text=f"it's {email}")).text == f"it's {EMAIL}"
    assert redact_event(PartialTranscript(turn_id="t1", text=email, audio_ms=900)).text == EMAIL
    chunk = ReplyTextChunk(reply_id="r1", in_reply_to="t1", seq=0, text=email, last=True)
    assert redact_event(chunk) == chunk.model_copy(update={"text": EMAIL})
    assert redact_event(ReplyCancelled(reply_id="r1", heard_text=email)).heard_text == EMAIL
    called = ToolCalled(tool_call_id="c1", name="book", arguments=f'{{"email": "{email}"}}')
    assert redact_event(called).arguments == f'{{"email": "{EMAIL}"}}'
    returned = ToolReturned(
        tool_call_id="c1", name="book", result=email, failed=False, duration_ms=1
    )
    assert redact_event(returned).result == EMAIL
    assert redact_event(CallEnded(reason=f"sent to {email}")).reason == f"sent to {EMAIL}"
    started = SpeechStarted(turn_id="t1", audio_offset_ms=0)
    assert redact_event(started) is started


def test_a_redacted_field_stays_within_its_contracts_length() -> None:
    """`[email]` is longer than `a@b.c`: an end reason of short addresses would outgrow 200."""
    ended = redact_event(CallEnded(reason="a@b.c " * 33))
    assert len(ended.reason) == 200
    assert "@" not in ended.reason
    CallEnded.model_validate(ended.model_dump())
