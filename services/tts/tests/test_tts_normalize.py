"""Text normalization for speech: a reply's sentence reaches the synthesizer as a person says it."""

from __future__ import annotations

import random

import pytest

from voicebus_tts.normalize import speakable

CARDINALS = [
    ("0", "zero"),
    ("7", "seven"),
    ("13", "thirteen"),
    ("40", "forty"),
    ("99", "ninety-nine"),
    ("100", "one hundred"),
    ("105", "one hundred five"),
    ("999", "nine hundred ninety-nine"),
    ("1,250", "one thousand two hundred fifty"),
    ("12,000", "twelve thousand"),
    ("1,000,000", "one million"),
    ("3,000,000,000", "three billion"),
    ("2,500,000,017", "two billion five hundred million seventeen"),
    ("-4", "minus four"),
    ("It dropped to -12 overnight", "It dropped to minus twelve overnight"),
    ("+5", "plus five"),
    ("We have 3 boats and 12 kayaks.", "We have three boats and twelve kayaks."),
    ("Route 66", "Route sixty-six"),
    ("COVID-19", "COVID-nineteen"),
    ("1,250.75", "one thousand two hundred fifty point seven five"),
    ("Your booking is 48213377.", "Your booking is four eight two one three three seven seven."),
    ("Agent 007", "Agent zero zero seven"),
]
DECIMALS = [
    ("3.5", "three point five"),
    ("0.5", "zero point five"),
    ("3.14", "three point one four"),
    ("3.05", "three point zero five"),
    ("-0.5", "minus zero point five"),
    (".5", "point five"),
    ("Version 2.0 is out.", "Version two point zero is out."),
]
YEARS = [
    ("in 1987", "in nineteen eighty-seven"),
    ("2026", "twenty twenty-six"),
    ("It opened in 2000.", "It opened in two thousand."),
    ("since 1905", "since nineteen oh five"),
    ("by 2009", "by two thousand nine"),
    ("in 2010", "in twenty ten"),
    ("in 1066", "in ten sixty-six"),
    ("the year 1900", "the year nineteen hundred"),
    ("The summer of 1969", "The summer of nineteen sixty-nine"),
    ("Copyright 2026", "Copyright twenty twenty-six"),
    ("We sold 2026 boats", "We sold two thousand twenty-six boats"),
    ("a total of 1250 points", "a total of one thousand two hundred fifty points"),
    ("the 1980s", "the nineteen eighties"),
    ("the '90s", "the nineties"),
    ("mid-1990s", "mid-nineteen nineties"),
    ("the 2010s", "the twenty tens"),
]
RANGES = [
    ("9-5", "nine to five"),
    ("2-3 days", "two to three days"),
    ("10\u201315 minutes", "ten to fifteen minutes"),
    ("1990-2000", "nineteen ninety to two thousand"),
    ("2020-21", "twenty twenty to twenty-one"),
    ("500-1000 guests", "five hundred to one thousand guests"),
    ("They won 3-2.", "They won three to two."),
    ("a 5-10-minute walk", "a five to ten-minute walk"),
]
ORDINALS = [
    ("1st", "first"),
    ("2nd", "second"),
    ("3rd", "third"),
    ("4th", "fourth"),
    ("11th", "eleventh"),
    ("12th", "twelfth"),
    ("22nd", "twenty-second"),
    ("40th", "fortieth"),
    ("101st", "one hundred first"),
    ("the 3rd of June", "the third of June"),
    ("4th of July", "the fourth of July"),
    ("our 5th-grade trip", "our fifth-grade trip"),
]
MONEY = [
    ("$12.50", "twelve dollars and fifty cents"),
    ("$12.5", "twelve dollars and fifty cents"),
    ("€15", "fifteen euros"),
    ("15 €", "fifteen euros"),
    ("15€", "fifteen euros"),
    ("EUR 15", "fifteen euros"),
    ("15 EUR", "fifteen euros"),
    ("£3", "three pounds"),
    ("£3.50", "three pounds and fifty pence"),
    ("£0.01", "one penny"),
    ("$1", "one dollar"),
    ("$0.99", "ninety-nine cents"),
    ("$1.01", "one dollar and one cent"),
    ("$12.00", "twelve dollars"),
    ("It's $1,250.", "It's one thousand two hundred fifty dollars."),
    ("USD 20", "twenty dollars"),
    ("US$5", "five dollars"),
    ("CAD 20", "twenty Canadian dollars"),
    ("¥500", "five hundred yen"),
    ("$10-20", "ten to twenty dollars"),
    ("$10-$20", "ten to twenty dollars"),
    ("$9.50-$12", "nine dollars and fifty cents to twelve dollars"),
    ("$1.5 million", "one point five million dollars"),
    ("$3k", "three thousand dollars"),
    ("$2.5M", "two point five million dollars"),
    ("-$5", "minus five dollars"),
    ("$0.125", "zero point one two five dollars"),
    ("$45/hr", "forty-five dollars per hour"),
    ("It rents for $450/day.", "It rents for four hundred fifty dollars per day."),
]
PERCENTAGES = [
    ("30%", "thirty percent"),
    ("2.5%", "two point five percent"),
    ("100 %", "one hundred percent"),
    ("-3%", "minus three percent"),
    ("10-20%", "ten to twenty percent"),
]
DATES = [
    ("2026-11-25", "November twenty-fifth, twenty twenty-six"),
    ("on 2026-01-02", "on January second, twenty twenty-six"),
    ("Nov 25", "November twenty-fifth"),
    ("Nov. 25, 2026", "November twenty-fifth, twenty twenty-six"),
    ("November 25th", "November twenty-fifth"),
    ("on June 3", "on June third"),
    ("Sept 1", "September first"),
    ("Nov 25-27", "November twenty-fifth to twenty-seventh"),
    ("June 2026", "June twenty twenty-six"),
    ("25 November 2026", "the twenty-fifth of November, twenty twenty-six"),
    ("on 5 May", "on the fifth of May"),
    ("11/25/2026", "November twenty-fifth, twenty twenty-six"),
    ("1/2/2026", "January second, twenty twenty-six"),
    ("12/31/99", "December thirty-first, nineteen ninety-nine"),
    ("25/11/2026", "the twenty-fifth of November, twenty twenty-six"),
]
TIMES = [
    ("6:30 pm", "six thirty p m"),
    ("6:30pm", "six thirty p m"),
    ("6:30 P.M. tomorrow", "six thirty p m tomorrow"),
    ("See you at 6 p.m.", "See you at six p m."),
    ("18:30", "eighteen thirty"),
    ("9 am", "nine a m"),
    ("9am", "nine a m"),
    ("9:05", "nine oh five"),
    ("12:00", "twelve o'clock"),
    ("9:00 am", "nine a m"),
    ("18:00", "eighteen hundred"),
    ("00:00", "midnight"),
    ("18:30:15", "eighteen thirty and fifteen seconds"),
    ("9am-5pm", "nine a m to five p m"),
    ("10:00-11:30", "ten o'clock to eleven thirty"),
    ("9-5pm", "nine to five p m"),
]
PHONE_NUMBERS = [
    ("+1 415-555-0100", "plus one, four one five, five five five, zero one zero zero"),
    ("555-0142", "five five five, zero one four two"),
    ("(415) 555 0100", "four one five, five five five, zero one zero zero"),
    ("415.555.0100", "four one five, five five five, zero one zero zero"),
    ("1-800-555-0199", "one, eight zero zero, five five five, zero one nine nine"),
    ("+44 20 7946 0958", "plus four four, two zero, seven nine four six, zero nine five eight"),
    ("+14155550100", "plus one, four one five, five five five, zero one zero zero"),
    ("Call us at 555-0142.", "Call us at five five five, zero one four two."),
]
ADDRESSES = [
    ("hello@harborlightboats.example", "hello at harborlightboats dot example"),
    (
        "Write to john.smith_2@mail.example.com.",
        "Write to john dot smith underscore two at mail dot example dot com.",
    ),
    ("https://www.example.com/book", "example dot com slash book"),
    ("harborlightboats.example", "harborlightboats dot example"),
    ("See harborlightboats.example.", "See harborlightboats dot example."),
    ("www.example.com", "example dot com"),
    ("Visit example.com/book-now?ref=ad.", "Visit example dot com slash book dash now."),
    ("Book at example.co.uk today", "Book at example dot co dot uk today"),
    ("http://localhost:8080/api", "localhost colon eight zero eight zero slash api"),
]
ABBREVIATIONS = [
    ("Dr. Smith will call.", "Doctor Smith will call."),
    ("I spoke with Dr. Patel.", "I spoke with Doctor Patel."),
    ("We are at 12 Harbor Dr.", "We are at twelve Harbor Drive."),
    ("Mr. Lee and Mrs. Lee", "Mister Lee and Missus Lee"),
    ("Ms Jones", "Miz Jones"),
    ("We're on Main St.", "We're on Main Street."),
    ("5th St. is closed", "fifth Street is closed"),
    ("St. Louis", "Saint Louis"),
    ("We flew to St. Louis today", "We flew to Saint Louis today"),
    ("42 St. Mark's Place", "forty-two Saint Mark's Place"),
    ("boats, e.g. the sloop", "boats, for example the sloop"),
    ("E.g. this one", "For example this one"),
    ("the big one, i.e. the ketch", "the big one, that is the ketch"),
    ("life jackets, flares, etc.", "life jackets, flares, et cetera."),
    ("approx. 5 km", "approximately five kilometers"),
    ("Sail vs. motor", "Sail versus motor"),
    ("Pier No. 5", "Pier Number five"),
    ("Slip #12", "Slip number twelve"),
    ("ext. 204", "extension two hundred four"),
]
UNITS = [
    ("5 km", "five kilometers"),
    ("1 km", "one kilometer"),
    ("20 kg", "twenty kilograms"),
    ("5 knots", "five knots"),
    ("12 kts", "twelve knots"),
    ("60 hp", "sixty horsepower"),
    ("60hp", "sixty horsepower"),
    ("32-foot", "thirty-two-foot"),
    ("a 32-ft boat", "a thirty-two-foot boat"),
    ("32 ft", "thirty-two feet"),
    ("5-10 km", "five to ten kilometers"),
    ("1.5 km", "one point five kilometers"),
    ("a 5-min walk", "a five-minute walk"),
    ("25 mph", "twenty-five miles per hour"),
    ("20°C", "twenty degrees Celsius"),
    ("-5 °C", "minus five degrees Celsius"),
]
FRACTIONS = [
    ("1/2", "one half"),
    ("3/4", "three quarters"),
    ("2/3 of them", "two thirds of them"),
    ("open 24/7", "open twenty-four seven"),
]
UNCHANGED = [
    "",
    "   ",
    "Hello, how are you?",
    "May I help you with anything else?",
    "No. I'm afraid that's not possible!",
    "He said no.",
    "We sail on weekdays; weekends are busy...",
    "Monday-Friday, rain or shine.",
    "Node.js and file.txt",
    "4G, A380 and 2.3.1 stay as written.",
    "the U.S. and U.K.",
    "Quotes: 'single' and \"double\" — and a dash.",
    "¿Qué? Ça va. Grüße!",
]
ALL_CASES = [
    *CARDINALS,
    *DECIMALS,
    *YEARS,
    *RANGES,
    *ORDINALS,
    *MONEY,
    *PERCENTAGES,
    *DATES,
    *TIMES,
    *PHONE_NUMBERS,
    *ADDRESSES,
    *ABBREVIATIONS,
    *UNITS,
    *FRACTIONS,
]


@pytest.mark.parametrize(("written", "said"), CARDINALS + DECIMALS)
def test_numbers_are_said_in_words(written: str, said: str) -> None:
    assert speakable(written) == said


@pytest.mark.parametrize(("written", "said"), YEARS)
def test_years_are_said_as_years_where_they_read_as_years(written: str, said: str) -> None:
    assert speakable(written) == said


@pytest.mark.parametrize(("written", "said"), RANGES)
def test_ranges_of_numbers_are_said_from_to(written: str, said: str) -> None:
    assert speakable(written) == said


@pytest.mark.parametrize(("written", "said"), ORDINALS)
def test_ordinals(written: str, said: str) -> None:
    assert speakable(written) == said


@pytest.mark.parametrize(("written", "said"), MONEY)
def test_money_is_said_with_its_currency(written: str, said: str) -> None:
    assert speakable(written) == said


@pytest.mark.parametrize(("written", "said"), PERCENTAGES)
def test_percentages(written: str, said: str) -> None:
    assert speakable(written) == said


@pytest.mark.parametrize(("written", "said"), DATES)
def test_dates_month_first_in_american_english(written: str, said: str) -> None:
    assert speakable(written) == said
    assert speakable(written, language="en-us") == said


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("2026-11-25", "the twenty-fifth of November, twenty twenty-six"),
        ("on 1/2/2026", "on the first of February, twenty twenty-six"),
        ("on the 25/11/2026", "on the twenty-fifth of November, twenty twenty-six"),
        ("11/25/2026", "November twenty-fifth, twenty twenty-six"),
        ("Nov 25", "November twenty-fifth"),
    ],
)
def test_dates_day_first_where_the_day_is_written_first(written: str, said: str) -> None:
    assert speakable(written, language="en-GB") == said


@pytest.mark.parametrize(("written", "said"), TIMES)
def test_times(written: str, said: str) -> None:
    assert speakable(written) == said


@pytest.mark.parametrize(("written", "said"), PHONE_NUMBERS)
def test_phone_numbers_are_read_digit_by_digit_in_their_groups(written: str, said: str) -> None:
    assert speakable(written) == said


@pytest.mark.parametrize(("written", "said"), ADDRESSES)
def test_email_and_web_addresses(written: str, said: str) -> None:
    assert speakable(written) == said


@pytest.mark.parametrize(("written", "said"), ABBREVIATIONS)
def test_abbreviations_are_said_in_full(written: str, said: str) -> None:
    assert speakable(written) == said


@pytest.mark.parametrize(("written", "said"), UNITS + FRACTIONS)
def test_units_and_fractions(written: str, said: str) -> None:
    assert speakable(written) == said


def test_a_whole_reply_sentence() -> None:
    written = (
        "Dr. Lee's 32-ft sloop leaves St. Augustine at 6:30 pm on Nov 25; "
        "it's $12.50 per person (approx. 30% off) — call 555-0142 or see example.com/book."
    )

    assert speakable(written) == (
        "Doctor Lee's thirty-two-foot sloop leaves Saint Augustine at six thirty p m on November "
        "twenty-fifth; it's twelve dollars and fifty cents per person (approximately thirty "
        "percent off) — call five five five, zero one four two or see example dot com slash book."
    )


@pytest.mark.parametrize("text", UNCHANGED)
def test_ordinary_text_is_left_as_it_is(text: str) -> None:
    assert speakable(text) == text


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Dr. Schmidt zahlt 15 € am 25.11.2026 um 18:30.", "de"),
        ("Le 3 mai à 9h, 30% de remise.", "fr"),
        ("Cuesta $12.50, llame al 555-0142.", "es-MX"),
        ("$12.50", ""),
    ],
)
def test_other_languages_pass_through_unchanged(text: str, language: str) -> None:
    assert speakable(text, language=language) == text


@pytest.mark.parametrize("language", ["en", "en-us", "en-US", "en_GB", "EN", "en-gb-x-rp"])
def test_every_english_tag_is_normalized(language: str) -> None:
    assert speakable("$1", language=language) == "one dollar"


@pytest.mark.parametrize("written", [written for written, _ in ALL_CASES])
def test_normalizing_twice_changes_nothing_more(written: str) -> None:
    once = speakable(written)

    assert speakable(once) == once


def test_mixed_replies_come_back_unchanged_from_a_second_pass() -> None:
    """Pieces of replies strung together at random, between spaces and punctuation."""
    pieces = [written for written, _ in ALL_CASES] + [
        ",",
        ".",
        "-",
        "\u2013",
        "/",
        "%",
        "€",
        "the",
        "of",
        "in",
        "to",
        "Main",
        "St",
        "Dr",
        "pm",
        "km",
        "million",
        "25",
        "November",
        "2026",
    ]
    rng = random.Random(5)
    for _ in range(2_000):
        text = "".join(
            rng.choice(pieces) + rng.choice([" ", ", ", "; ", ". "])
            for _ in range(rng.randint(1, 8))
        )
        once = speakable(text)
        assert speakable(once) == once, text


ODD_INPUTS = [
    "$",
    "€€€",
    "@",
    "@@x.example",
    "http://",
    "https://.com",
    "www.",
    "...",
    "---",
    "-",
    "+",
    "#",
    "%",
    ":",
    "::30",
    "25:61",
    "99:99 pm",
    "0/0",
    "1/0/0",
    "00/00/0000",
    "2026-13-45",
    "2026-00-00",
    "Nov 0",
    "Nov 99",
    "0th",
    "1,2,3",
    "1,,000",
    "1.2.3.4",
    "1e10",
    "9" * 40,
    "1," + "000," * 20 + "000",
    "$" + "9" * 30,
    "+" + "1 " * 30,
    "St.",
    "Dr.",
    "No.",
    "e.g.e.g.",
    "\u0663\u0664 \u0661\u0662:\u0663\u0660 $\u0665",  # Arabic-Indic digits
    "\u00b2\u00b3 \u00bd \u2154",
    "\u200b1\u200b2",
    "🙂 5 🙂",
    "\x00\x01\x7f",
    "\n\t\r",
    "a" * 5_000,
    "1-" * 2_000,
    "1." * 2_000,
    "a@" * 2_000,
]


@pytest.mark.parametrize("text", ODD_INPUTS)
def test_odd_input_never_raises(text: str) -> None:
    assert isinstance(speakable(text), str)


def test_random_characters_never_raise() -> None:
    alphabet = [
        *"0123456789" * 3,
        *"aAmMpPsStTkK.,:;-\u2013/%$€£¥@+#()' °\t\n\u00b2\u0663",
        "St.",
        "e.g.",
        "www.",
    ]
    rng = random.Random(3)
    for _ in range(3_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert isinstance(speakable(text), str), text
