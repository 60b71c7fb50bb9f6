"""Text normalization for speech: a reply's sentence written out the way a person says it.

Speech synthesizers read what they are given, and each reads symbols its own way: eSpeak NG
says "$12.50" as "dollar twelve point five zero" and a cloud voice may spell a phone number as
one big number. So before a sentence goes to any provider, `speakable` writes out numbers,
ordinals, money, percentages, dates, times, phone numbers, email and web addresses, units and
common abbreviations, and callers hear "fifteen euros", not "one five euro sign".

English only for now: for any other language the text passes through unchanged.

How things are said (American English):
- Cardinals: "1,250" is "one thousand two hundred fifty" (no "and"), "-4" "minus four", "3.05"
  "three point zero five". A run of seven or more digits not ending in 000, or one starting with
  0, is a code (an order or booking number): its digits are read one by one.
- Years: a four-digit number is read as a year ("nineteen eighty-seven", "twenty twenty-six",
  "two thousand five", "nineteen oh five") after a word that announces one ("in", "since",
  "by", "until", ...; "of", "to", "and", "or" only from 1900), in a date, in a range of two of
  them, or alone before punctuation or the end of the text (1900 to 2099). Elsewhere it is a
  quantity: "2026 boats" is "two thousand twenty-six boats".
- Dates: numeric dates are read month first ("November twenty-fifth, twenty twenty-six") for
  "en" and "en-us" and every other English region except those that write the day first (GB,
  AU, NZ, IE, IN, ZA), where "25/11/2026" is "the twenty-fifth of November, twenty twenty-six";
  a slashed date that only reads one way (a first number above 12) is read that way. Dates
  written with the month's name are read in their written order.
- Times: "6:30 pm" is "six thirty p m", "9:05" "nine oh five", "9 am" "nine a m". A 24-hour time
  keeps its hour: "18:30" is "eighteen thirty". On the hour with no a m/p m, 1 to 12 is said
  "o'clock" ("twelve o'clock") and 13 to 23 "hundred" ("eighteen hundred"); "00:00" is
  "midnight".
- Phone numbers: digits one by one, in their written groups: "five five five, zero one four two".
- Web and email addresses: "example dot com slash book", with the scheme, "www.", the query
  and the fragment dropped.
- "St." is "Saint" before a name unless a street's name comes first ("Main St.", "5th St."),
  else "Street"; "Dr." is "Drive" after a street's name, else "Doctor".
- An abbreviation's full stop at the very end of the text stays, as the sentence's full stop.

Not handled: numbers glued to letters ("4G", "A380", "3x", "100s") stay as written, and so do
version numbers and IP addresses ("2.3.1"); numbers beyond the trillions are read digit by
digit. Fractions other than simple ones ("3/4", "24/7") and dates without a year ("11/25") are
read as numbers around a slash. ZIP codes, short codes and emergency numbers ("911") are read
as quantities, feet and inches (5'10") as plain numbers. Roman numerals are left alone.

Everything is one compiled regex per kind, applied in order (addresses first, plain numbers
last), so each kind sees only what the ones before it left; it runs on every sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

# --- Numbers as words ------------------------------------------------------------------------

_ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_TOO_LARGE = 10**15
"""From here on a number is read digit by digit: nobody says quadrillions on the phone."""
_IRREGULAR_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_FIRST_YEAR, _LAST_YEAR = 1000, 2099
_MODERN_YEAR = 1900
"""From here a number standing alone, or after a weak cue ("of", "to"), reads as a year."""
_CODE_LENGTH = 7
"""Digits in a run read one by one (an order number), unless it ends in 000."""

_DIGIT = re.compile(r"\d")
_LAST_WORD = re.compile(r"[a-z]+$")


def _digits(written: str) -> str:
    """Each digit on its own: "0142" is "zero one four two"."""
    return " ".join(_ONES[int(digit)] for digit in _DIGIT.findall(written))


def _below_hundred(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return f"{_TENS[tens]}-{_ONES[ones]}" if ones else _TENS[tens]


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _below_hundred(rest)
    return f"{_ONES[hundreds]} hundred" + (f" {_below_hundred(rest)}" if rest else "")


def _cardinal(n: int) -> str:
    if n < 0:
        return f"minus {_cardinal(-n)}"
    if n >= _TOO_LARGE:
        return _digits(str(n))
    words = []
    for scale, name in _SCALES:
        count, n = divmod(n, scale)
        if count:
            words.append(f"{_below_thousand(count)} {name}")
    if n or not words:
        words.append(_below_thousand(n))
    return " ".join(words)


def _ordinal_word(word: str) -> str:
    if word in _IRREGULAR_ORDINALS:
        return _IRREGULAR_ORDINALS[word]
    return word[:-1] + "ieth" if word.endswith("y") else word + "th"


def _ordinal(n: int) -> str:
    return _LAST_WORD.sub(lambda last: _ordinal_word(last.group()), _cardinal(n), count=1)


def _plural(words: str) -> str:
    """ "nineteen ninety" -> "nineteen nineties", "two thousand" -> "two thousands"."""
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _year(n: int) -> str:
    century, rest = divmod(n, 100)
    if century % 10 == 0 and rest < 10:  # 1000-1009, 2000-2009
        return _cardinal(n)
    if not rest:
        return f"{_cardinal(century)} hundred"
    if rest < 10:
        return f"{_cardinal(century)} oh {_ONES[rest]}"
    return f"{_cardinal(century)} {_below_hundred(rest)}"


def _year_or_number(n: int) -> str:
    return _year(n) if _FIRST_YEAR <= n <= _LAST_YEAR else _cardinal(n)


def _quantity(written: str) -> str:
    """A written number as an amount: "1,250.5" is "one thousand two hundred fifty point five"."""
    whole, _, fraction = written.replace(",", "").partition(".")
    words = _cardinal(int(whole)) if whole else ""
    return f"{words} point {_digits(fraction)}".strip() if fraction else words


def _is_code(written: str) -> bool:
    """Digits that name something rather than count it: "0142", "48213377"."""
    if not written.isdecimal():
        return False
    return (written[0] == "0" and len(written) > 1) or (
        len(written) >= _CODE_LENGTH and not written.endswith("000")
    )


def _number(written: str) -> str:
    return _digits(written) if _is_code(written) else _quantity(written)


# --- Shared pieces of the patterns -------------------------------------------------------------

_NUM = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
"""A written number: "7", "1,250", "3.5", "1,250.75"."""
_START = r"(?:(?<![^\s(\[])(?P<sign>[-\u2212+])|(?<![\w.]))"
"""Where a number starts: not inside a word or another number; a sign only after a space."""
_UPTO = r"(?:\s?[-\u2013]\s?(?P<upto>" + _NUM + r"))?"
"""The other end of a range: "10-20", "10 - 20", or with an en dash."""
_SIGN_WORDS = {"-": "minus ", "\u2212": "minus ", "+": "plus "}

_ONLY_SPACE = re.compile(r"\s*$")


def _final_stop(match: re.Match[str]) -> str:
    """The full stop an abbreviation ended with, kept if it also ends the sentence."""
    at_end = match.group().endswith(".") and _ONLY_SPACE.match(match.string, match.end())
    return "." if at_end else ""


def _sign(match: re.Match[str]) -> str:
    return _SIGN_WORDS.get(match["sign"] or "", "")


def _span(match: re.Match[str]) -> str:
    """The match's amount, or its range of amounts."""
    low, high = match["amount"], match["upto"]
    return f"{_quantity(low)} to {_quantity(high)}" if high else _quantity(low)


# --- Email and web addresses -------------------------------------------------------------------

_SYMBOL_NAMES = {
    ".": "dot",
    "-": "dash",
    "_": "underscore",
    "+": "plus",
    "/": "slash",
    ":": "colon",
    "~": "tilde",
    "%": "percent",
    "=": "equals",
    "&": "and",
}
_ADDRESS_PART = re.compile(r"[^\W\d_]+|\d|\S")
_TLDS = "com|org|net|edu|gov|io|co|ai|dev|app|info|biz|us|uk|ca|de|eu|fr|au|nz|ie|tv|example"
_EMAIL = re.compile(r"(?<![\w.+-])(?P<user>[\w.+-]+)@(?P<domain>[\w-]+(?:\.[\w-]+)+)(?![\w@-])")
_URL = re.compile(
    r"(?<![\w@./-])(?:"
    r"https?://(?:www\.)?(?P<host>[\w-]+(?:\.[\w-]+)*)"
    r"|www\.(?P<www_host>[\w-]+(?:\.[\w-]+)+)"
    rf"|(?P<bare_host>[\w-]+(?:\.[\w-]+)*\.(?:{_TLDS}))(?![\w-])"
    r")(?P<port>:\d{1,5})?"
    r"(?P<path>/(?:[\w\-./~%+=&:@!]*[\w\-/~%+=&@])?)?"
    r"(?P<query>[?#][\w\-./~%+=&:@!?#]*[\w\-/~%+=&@])?"
)


def _spell_address(address: str) -> str:
    """Words as written, digits one by one, symbols by name: "b2.io" is "b two dot io"."""
    spoken = []
    for part in _ADDRESS_PART.findall(address):
        if _DIGIT.fullmatch(part):
            spoken.append(_ONES[int(part)])
        else:
            spoken.append(_SYMBOL_NAMES.get(part, part))
    return " ".join(spoken)


def _email(match: re.Match[str]) -> str:
    return f"{_spell_address(match['user'])} at {_spell_address(match['domain'])}"


def _url(match: re.Match[str]) -> str:
    host = match["host"] or match["www_host"] or match["bare_host"]
    rest = f"{match['port'] or ''}{match['path'] or ''}".rstrip("/")
    return _spell_address(host + rest)


# --- Abbreviations -----------------------------------------------------------------------------

_TITLES = {
    "Mr": "Mister",
    "Mrs": "Missus",
    "Ms": "Miz",
    "Prof": "Professor",
    "Jr": "Junior",
    "Sr": "Senior",
    "Mt": "Mount",
    "Ave": "Avenue",
    "Blvd": "Boulevard",
    "Rd": "Road",
    "Apt": "Apartment",
    "Dept": "Department",
    "Inc": "Incorporated",
    "Ltd": "Limited",
}
_PHRASES = {
    "e.g": "for example",
    "i.e": "that is",
    "etc": "et cetera",
    "approx": "approximately",
    "vs": "versus",
    "a.k.a": "also known as",
    "ext": "extension",
}
_ABBREVIATION = re.compile(
    rf"(?<![\w.])(?:(?P<title>{'|'.join(_TITLES)})(?:\.|(?=\s+[A-Z]))"
    r"|(?P<phrase>(?i:e\.g|i\.e|etc|approx|vs|a\.k\.a|ext))(?:\.|(?!\w)))"
)
_PLACE_OR_TITLE = re.compile(r"(?<![\w.])(?P<abbreviation>St|Dr)\.?(?=\s|$|[,;:!?)])")
_NUMBER_SIGN = re.compile(r"(?<![\w.])(?P<written>No|no|NO)\.\s?(?=\d)|(?<![\w&#])#(?=\d)")
_WORD_BEFORE = re.compile(r"(\w+)\s+$")
_SENTENCE_START_BEFORE = re.compile(r"(?:^|[.!?:;(\"“])\s*$")
_STREET_NUMBER = re.compile(r"\d+(?:st|nd|rd|th)")
_CAPITALIZED_AFTER = re.compile(r"\s+[A-Z]")
_LOOK_BACK = 40
"""How far back the word before an abbreviation, a date or a year is looked for."""


def _capitalized_like(written: str, words: str) -> str:
    return words[0].upper() + words[1:] if written[:1].isupper() else words


def _abbreviation(match: re.Match[str]) -> str:
    if match["title"]:
        return _TITLES[match["title"]] + _final_stop(match)
    phrase = match["phrase"]
    return _capitalized_like(phrase, _PHRASES[phrase.lower()]) + _final_stop(match)


def _after_street_name(text: str, start: int) -> bool:
    """Whether a street's name comes just before `start` ("Main St.", "5th St."): a number
    with an ordinal's ending, or a capitalized word that does not begin the sentence."""
    word = _WORD_BEFORE.search(text, max(0, start - _LOOK_BACK), start)
    if word is None:
        return False
    name = word.group(1)
    if _STREET_NUMBER.fullmatch(name):
        return True
    opens_sentence = _SENTENCE_START_BEFORE.search(text, max(0, word.start() - 4), word.start())
    return name[0].isupper() and opens_sentence is None


def _place_or_title(match: re.Match[str]) -> str:
    text, street = match.string, _after_street_name(match.string, match.start())
    if match["abbreviation"] == "St":
        saint = not street and _CAPITALIZED_AFTER.match(text, match.end())
        word = "Saint" if saint else "Street"
    else:
        word = "Drive" if street else "Doctor"
    return word + _final_stop(match)


def _number_sign(match: re.Match[str]) -> str:
    return _capitalized_like(match["written"] or "", "number") + " "


# --- Phone numbers -----------------------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w+.$€£¥-])(?:"
    r"(?P<international>\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){1,5})"
    r"|(?:1[\s.-])?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}"
    r"|(?P<local>\d{3})[.-](?P<line>\d{4})"
    r")(?!\w|[.-]?\d)"
)
_DIGIT_GROUP = re.compile(r"\d+")
_SHORTEST_PHONE = 7
_NANP = (1, 3, 3, 4)
"""+1 4155550100 written without separators: country, area, exchange, line."""


def _is_round_range(low: str, high: str) -> bool:
    """ "500-1000" is a range of round numbers, not a number to call ("555-0100")."""
    return low.endswith("0") and high.endswith("00") and high[0] != "0"


def _phone(match: re.Match[str]) -> str:
    groups = _DIGIT_GROUP.findall(match.group())
    if sum(map(len, groups)) < _SHORTEST_PHONE:
        return match.group()
    if match["local"] and _is_round_range(match["local"], match["line"]):
        return match.group()
    if len(groups) == 1 and groups[0].startswith("1") and len(groups[0]) == sum(_NANP):
        digits, groups = groups[0], []
        for size in _NANP:
            groups.append(digits[:size])
            digits = digits[size:]
    spoken = ", ".join(_digits(group) for group in groups)
    return f"plus {spoken}" if match["international"] else spoken


# --- Dates -------------------------------------------------------------------------------------

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_NAME = (
    "(?P<month>" + "|".join(_MONTHS) + r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)(?!\w)"
)
_MONTH_BY_PREFIX = {name[:3]: name for name in _MONTHS}
_ORDINAL_SUFFIX = r"(?:st|nd|rd|th)?"
_DAY_FIRST_REGIONS = frozenset({"gb", "uk", "au", "nz", "ie", "in", "za"})
_TWO_DIGIT_YEAR_PIVOT = 69
"""As Python's strptime: "69" and below are this century, "70" and above the last."""

_ISO_DATE = re.compile(
    r"(?<![\w.:/-])(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?!\w|[.:/-]\d)"
)
_SLASHED_DATE = re.compile(
    r"(?<![\w.:/-])(?P<first>\d{1,2})/(?P<second>\d{1,2})/(?P<year>\d{4}|\d{2})(?!\w|[./-]\d)"
)
_MONTH_FIRST_DATE = re.compile(
    rf"(?<![\w.]){_MONTH_NAME}\.?\s(?:"
    rf"(?P<day>\d{{1,2}}){_ORDINAL_SUFFIX}"
    rf"(?:\s?[-\u2013]\s?(?P<last_day>\d{{1,2}}){_ORDINAL_SUFFIX})?"
    r"(?:,?\s(?P<year>\d{4}))?"
    r"|(?P<month_year>\d{4}))(?!\w|[.,:-]\d)"
)
_DAY_FIRST_DATE = re.compile(
    rf"(?<![\w.,])(?P<day>\d{{1,2}}){_ORDINAL_SUFFIX}\s(?:of\s)?{_MONTH_NAME}"
    r"(?:\.?(?:,?\s(?P<year>\d{4}))(?!\w|[.,:-]\d))?"
)
_THE_BEFORE = re.compile(r"\b[Tt]he\s+$")


def _with_year(spoken: str, year: int | None) -> str:
    return f"{spoken}, {_year_or_number(year)}" if year is not None else spoken


def _month_first(month: int, day: int, year: int | None) -> str:
    return _with_year(f"{_MONTHS[month - 1]} {_ordinal(day)}", year)


def _day_first(month: int, day: int, year: int | None, *, after_the: bool) -> str:
    the = "" if after_the else "the "
    return _with_year(f"{the}{_ordinal(day)} of {_MONTHS[month - 1]}", year)


def _follows_the(match: re.Match[str]) -> bool:
    before = max(0, match.start() - _LOOK_BACK)
    return _THE_BEFORE.search(match.string, before, match.start()) is not None


def _numeric_date(match: re.Match[str], month: int, day: int, year: int, day_first: bool) -> str:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group()
    if day_first:
        return _day_first(month, day, year, after_the=_follows_the(match))
    return _month_first(month, day, year)


def _iso_date(match: re.Match[str], *, day_first: bool) -> str:
    month, day, year = int(match["month"]), int(match["day"]), int(match["year"])
    return _numeric_date(match, month, day, year, day_first)


def _slashed_date(match: re.Match[str], *, day_first: bool) -> str:
    first, second, year = int(match["first"]), int(match["second"]), int(match["year"])
    if len(match["year"]) == 2:
        year += 2000 if year <= _TWO_DIGIT_YEAR_PIVOT else 1900
    if first > 12 or second > 12:  # only one way to read it
        day_first = first > 12
    month, day = (second, first) if day_first else (first, second)
    return _numeric_date(match, month, day, year, day_first)


def _month_number(match: re.Match[str]) -> int:
    return _MONTHS.index(_MONTH_BY_PREFIX[match["month"][:3]]) + 1


def _month_first_date(match: re.Match[str]) -> str:
    month = _month_number(match)
    if match["month_year"]:
        return f"{_MONTHS[month - 1]} {_year_or_number(int(match['month_year']))}"
    day, last_day = int(match["day"]), match["last_day"]
    if not 1 <= day <= 31 or (last_day and not 1 <= int(last_day) <= 31):
        return match.group()
    year = int(match["year"]) if match["year"] else None
    if last_day:
        days = f"{_ordinal(day)} to {_ordinal(int(last_day))}"
        return _with_year(f"{_MONTHS[month - 1]} {days}", year)
    return _month_first(month, day, year)


def _day_first_date(match: re.Match[str]) -> str:
    day = int(match["day"])
    if not 1 <= day <= 31:
        return match.group()
    year = int(match["year"]) if match["year"] else None
    return _day_first(_month_number(match), day, year, after_the=_follows_the(match))


# --- Times -------------------------------------------------------------------------------------

_HOUR = r"(?:[01]?\d|2[0-3])"
_MERIDIEM = r"[aApP](?:\.[mM]\.?|[mM])(?!\w)"
_TIME_RANGE = re.compile(
    rf"(?<![\w:.,])(?P<start>{_HOUR}(?::[0-5]\d)?(?:\s?{_MERIDIEM})?)\s?[-\u2013]\s?"
    rf"(?={_HOUR}(?::[0-5]\d|\s?{_MERIDIEM}))"
)
_TIME = re.compile(
    rf"(?<![\w:.,])(?P<hour>{_HOUR})(?=:[0-5]\d|\s?{_MERIDIEM})"
    r"(?::(?P<minute>[0-5]\d)(?::(?P<second>[0-5]\d))?)?"
    rf"(?:\s?(?P<meridiem>{_MERIDIEM}))?(?!\w|[:.]\d)"
)
_NOON = 12


def _time_range(match: re.Match[str]) -> str:
    return f"{match['start']} to "


def _time(match: re.Match[str]) -> str:
    hour, meridiem = int(match["hour"]), match["meridiem"]
    minute = int(match["minute"] or 0)
    if minute:
        spoken = f"{_cardinal(hour)} {'oh ' if minute < 10 else ''}{_cardinal(minute)}"
    elif meridiem:
        spoken = _cardinal(hour)
    elif hour == 0:
        spoken = "midnight"
    else:
        spoken = f"{_cardinal(hour)} " + ("hundred" if hour > _NOON else "o'clock")
    if second := int(match["second"] or 0):
        spoken += f" and {_cardinal(second)} second{'s' if second > 1 else ''}"
    if meridiem:
        spoken += f" {meridiem[0].lower()} m{_final_stop(match)}"
    return spoken


# --- Money, percentages, units -----------------------------------------------------------------


class _Currency(NamedTuple):
    one: str
    many: str
    cent: str = ""
    cents: str = ""


_DOLLAR = _Currency("dollar", "dollars", "cent", "cents")
_EURO = _Currency("euro", "euros", "cent", "cents")
_POUND = _Currency("pound", "pounds", "penny", "pence")
_YEN = _Currency("yen", "yen")
_CURRENCIES = {
    "$": _DOLLAR,
    "US$": _DOLLAR,
    "USD": _DOLLAR,
    "€": _EURO,
    "EUR": _EURO,
    "£": _POUND,
    "GBP": _POUND,
    "¥": _YEN,
    "JPY": _YEN,
    "CAD": _Currency("Canadian dollar", "Canadian dollars", "cent", "cents"),
    "AUD": _Currency("Australian dollar", "Australian dollars", "cent", "cents"),
}
_SCALE_WORDS = {
    "k": "thousand",
    "K": "thousand",
    "m": "million",
    "M": "million",
    "B": "billion",
    "bn": "billion",
    "thousand": "thousand",
    "million": "million",
    "billion": "billion",
    "trillion": "trillion",
}
_SYMBOL = r"US\$|[$€£¥]"
_CODE = r"(?:USD|EUR|GBP|JPY|CAD|AUD)"
_SCALE = r"(?:\s?(?P<scale>thousand|million|billion|trillion)|(?P<scale_letter>[kKmMB]|bn))?"
_PER = r"(?:/(?P<per>[A-Za-z]+)(?![:/]))?"
"""A rate: "$45/hr", "$200/night"."""
_MONEY_BEFORE = re.compile(
    rf"{_START}(?P<currency>{_SYMBOL}|{_CODE})\s?(?P<amount>{_NUM})"
    rf"(?:\s?[-\u2013]\s?(?:{_SYMBOL})?(?P<upto>{_NUM}))?{_SCALE}{_PER}(?!\w|\.\d)"
)
_MONEY_AFTER = re.compile(
    rf"{_START}(?P<amount>{_NUM}){_UPTO}{_SCALE}\s?(?P<currency>{_SYMBOL}|{_CODE}(?!\w)){_PER}"
    r"(?!\w)"
)
_PERCENT = re.compile(rf"{_START}(?P<amount>{_NUM}){_UPTO}\s?%")

_UNITS = {
    "km": ("kilometer", "kilometers"),
    "m": ("meter", "meters"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "yd": ("yard", "yards"),
    "kg": ("kilogram", "kilograms"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "L": ("liter", "liters"),
    "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "gal": ("gallon", "gallons"),
    "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "m/s": ("meter per second", "meters per second"),
    "kn": ("knot", "knots"),
    "kt": ("knot", "knots"),
    "kts": ("knot", "knots"),
    "hp": ("horsepower", "horsepower"),
    "HP": ("horsepower", "horsepower"),
    "kW": ("kilowatt", "kilowatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "h": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "mins": ("minute", "minutes"),
    "sec": ("second", "seconds"),
    "secs": ("second", "seconds"),
    "ms": ("millisecond", "milliseconds"),
    "KB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}
"""Units written after a number: singular, plural."""
_UNIT = "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))
_MEASURE = re.compile(
    rf"{_START}(?P<amount>{_NUM}){_UPTO}(?P<joint>-|\s?)(?P<unit>{_UNIT})(?![\w/])"
)


def _amount(written: str, currency: _Currency) -> str:
    """An amount of money: "12.50" dollars is "twelve dollars and fifty cents"."""
    whole, _, fraction = written.replace(",", "").partition(".")
    if len(fraction) > 2 or (fraction and not currency.cent):
        return f"{_quantity(written)} {currency.many}"
    major, minor = int(whole), int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if major or not minor:
        parts.append(f"{_cardinal(major)} {currency.one if major == 1 else currency.many}")
    if minor:
        parts.append(f"{_cardinal(minor)} {currency.cent if minor == 1 else currency.cents}")
    return " and ".join(parts)


def _money(match: re.Match[str]) -> str:
    currency = _CURRENCIES[match["currency"]]
    scale = match["scale"] or match["scale_letter"]
    low, high = match["amount"], match["upto"]
    if scale:
        spoken = f"{_span(match)} {_SCALE_WORDS[scale]} {currency.many}"
    elif high and "." not in low + high:
        spoken = f"{_span(match)} {currency.many}"
    elif high:
        spoken = f"{_amount(low, currency)} to {_amount(high, currency)}"
    else:
        spoken = _amount(low, currency)
    if per := match["per"]:
        spoken += f" per {_UNITS[per][0] if per in _UNITS else per}"
    return _sign(match) + spoken


def _percent(match: re.Match[str]) -> str:
    return f"{_sign(match)}{_span(match)} percent"


def _measure(match: re.Match[str]) -> str:
    one, many = _UNITS[match["unit"]]
    if match["joint"] == "-":  # "a 32-ft boat": the unit is an adjective, always singular
        return f"{_sign(match)}{_span(match)}-{one}"
    single = match["amount"] == "1" and not match["upto"]
    return f"{_sign(match)}{_span(match)} {one if single else many}"


# --- Ordinals, decades, fractions, ranges, plain numbers ---------------------------------------

_ORDINAL = re.compile(r"(?<![\w.])(?P<number>\d{1,3}(?:,\d{3})+|\d+)(?i:st|nd|rd|th)(?!\w)")
_DECADE = re.compile(
    r"(?<![\w'\u2019.])(?P<apostrophe>['\u2019])?(?P<decade>\d{4}|\d{2})['\u2019]?s(?!\w)"
)
_FRACTION = re.compile(
    r"(?<![\w.,/-])(?P<numerator>\d{1,2})/(?P<denominator>\d{1,2})(?![\w/]|[.,]\d)"
)
_RANGE = re.compile(
    rf"(?<![\w.,:/-])(?P<low>{_NUM})\s?[-\u2013]\s?(?P<high>{_NUM})(?!\w|[.,:/-]\d)"
)
_NUMBER = re.compile(rf"{_START}(?P<number>{_NUM}|\.\d+)(?!\w|\.\d)")
_YEAR_CUE = re.compile(
    r"\b(?P<cue>in|since|from|until|till|by|year|circa|before|after|during|through|between"
    r"|early|late|mid|spring|summer|autumn|fall|winter|of|to|and|or)(?:\s+|-)$",
    re.IGNORECASE,
)
_WEAK_YEAR_CUES = frozenset({"of", "to", "and", "or"})
_YEAR_ALONE = re.compile(r"\s*(?:$|[.,;:!?)\"'\u2019])")
_FOUR_DIGITS = re.compile(r"\d{4}")
_HALF, _QUARTER, _LARGEST_DENOMINATOR = 2, 4, 10


def _ordinal_number(match: re.Match[str]) -> str:
    return _ordinal(int(match["number"].replace(",", "")))


def _decade(match: re.Match[str]) -> str:
    decade = int(match["decade"])
    if decade % 10:
        return match.group()
    if len(match["decade"]) == 2 and decade:
        return _plural(_below_hundred(decade))
    if not match["apostrophe"] and _FIRST_YEAR <= decade <= _LAST_YEAR:
        return _plural(_year(decade))
    return match.group()


def _fraction(match: re.Match[str]) -> str:
    numerator, denominator = int(match["numerator"]), int(match["denominator"])
    if match.group() == "24/7":
        return "twenty-four seven"
    if not 0 < numerator < denominator <= _LARGEST_DENOMINATOR:
        return match.group()
    if denominator == _HALF:
        part = "half"
    elif denominator == _QUARTER:
        part = "quarter"
    else:
        part = _ordinal(denominator)
    return f"{_cardinal(numerator)} {_plural(part) if numerator > 1 else part}"


def _as_year(written: str) -> int | None:
    return int(written) if _FOUR_DIGITS.fullmatch(written) else None


def _range(match: re.Match[str]) -> str:
    low, high = _as_year(match["low"]), _as_year(match["high"])
    if low is not None and _FIRST_YEAR <= low <= _LAST_YEAR:
        if high is not None and low < high <= _LAST_YEAR:
            return f"{_year(low)} to {_year(high)}"
        if len(match["high"]) == 2:  # "2020-21"
            return f"{_year(low)} to {_cardinal(int(match['high']))}"
    return f"{_number(match['low'])} to {_number(match['high'])}"


def _reads_as_year(match: re.Match[str]) -> bool:
    year = _as_year(match["number"])
    if year is None or match["sign"] or not _FIRST_YEAR <= year <= _LAST_YEAR:
        return False
    text, start = match.string, match.start()
    cue = _YEAR_CUE.search(text, max(0, start - _LOOK_BACK), start)
    if cue is not None and (cue["cue"].lower() not in _WEAK_YEAR_CUES or year >= _MODERN_YEAR):
        return True
    return year >= _MODERN_YEAR and _YEAR_ALONE.match(text, match.end()) is not None


def _number_or_year(match: re.Match[str]) -> str:
    if _reads_as_year(match):
        return _year(int(match["number"]))
    return _sign(match) + _number(match["number"])


# --- The whole pass ----------------------------------------------------------------------------

_Pass = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _passes(*, day_first: bool) -> tuple[_Pass, ...]:
    """Each kind in the order it must run: a kind sees only the digits the earlier ones left."""
    return (
        (_EMAIL, _email),
        (_URL, _url),
        (_PLACE_OR_TITLE, _place_or_title),
        (_ABBREVIATION, _abbreviation),
        (_NUMBER_SIGN, _number_sign),
        (_PHONE, _phone),
        (_ISO_DATE, partial(_iso_date, day_first=day_first)),
        (_SLASHED_DATE, partial(_slashed_date, day_first=day_first)),
        (_DAY_FIRST_DATE, _day_first_date),  # first: "25 November 2026" holds "November 2026"
        (_MONTH_FIRST_DATE, _month_first_date),
        (_TIME_RANGE, _time_range),
        (_TIME, _time),
        (_MONEY_BEFORE, _money),
        (_MONEY_AFTER, _money),
        (_PERCENT, _percent),
        (_MEASURE, _measure),
        (_ORDINAL, _ordinal_number),
        (_DECADE, _decade),
        (_FRACTION, _fraction),
        (_RANGE, _range),
        (_NUMBER, _number_or_year),
    )


_MONTH_FIRST_PASSES = _passes(day_first=False)
_DAY_FIRST_PASSES = _passes(day_first=True)


def speakable(text: str, *, language: str = "en") -> str:
    """`text` written out as it is said, for a speech synthesizer; unchanged unless `language`
    (a tag such as "en", "en-us", "en-GB", "de") is English.

    Pure and never raises. Normalizing its output again changes nothing while words and numbers
    stand apart as in any reply (characters glued together at random can still turn, once their
    digits are words, into something else to read, such as a web address).
    """
    tag = language.strip().lower().replace("_", "-").split("-")
    if tag[0] != "en":
        return text
    day_first = len(tag) > 1 and tag[1] in _DAY_FIRST_REGIONS
    for pattern, replace in _DAY_FIRST_PASSES if day_first else _MONTH_FIRST_PASSES:
        text = pattern.sub(replace, text)
    return text
