"""Properties of what callers' clients send the gateway: Twilio Media Streams messages, the
stream token of a `start`, the browser's JSON messages and audio frames.

Whatever arrives (any text, any JSON, wrong types, huge or spoilt payloads, unknown events), it
is understood or refused with the protocol's own error, which the socket answers and logs; any
other exception would end the stream as a gateway error. Examples are bounded by the workspace's
Hypothesis profile (conftest.py at the root)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from voicebus_contracts import DTMF_DIGITS, MAX_FRAME_BYTES, AudioFormat
from voicebus_gateway.twilio.protocol import (
    MAX_MESSAGE_CHARS,
    TWILIO_MULAW,
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioMessage,
    TwilioProtocolError,
    UnsupportedMediaFormatError,
    check_media_format,
    parse_message,
)
from voicebus_gateway.twilio.security import TOKEN_PARAMETER, StreamTokenError, StreamTokens
from voicebus_gateway.web.protocol import (
    MAX_MARK_CHARS,
    MAX_TEXT_MESSAGE_CHARS,
    ClientMessage,
    ErrorCode,
    HangUpRequest,
    Played,
    PressDigit,
    WebProtocolError,
    check_caller_frame,
    parse_client_message,
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20).map(lambda raw: base64.b64encode(raw).decode()),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value, NaN and infinities included (Python's json reads and writes them)."""
TEXTS = st.text(max_size=300) | st.binary(max_size=300)
"""Any message a socket may deliver: text frames, or binary ones."""
SEQUENCE = st.integers(0, 2**31).map(str)
"""Twilio sends its counters as strings."""
DEEP = 1_000
"""Nesting beyond Python's recursion limit, well within either protocol's size limit."""


def audio(min_size: int = 1, max_size: int = MAX_FRAME_BYTES) -> st.SearchStrategy[bytes]:
    """Audio of any length in the range, cheaply: a short random pattern repeated."""
    return st.builds(
        lambda size, pattern: (pattern * size)[:size],
        st.integers(min_size, max_size),
        st.binary(min_size=1, max_size=16),
    )


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# --- Twilio Media Streams --------------------------------------------------------------------

SID = st.text(min_size=1, max_size=40)


def twilio(event: str, details: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """A Twilio message of `event`, its `event` object built from `details`."""
    return st.fixed_dictionaries(
        {
            "event": st.just(event),
            "sequenceNumber": SEQUENCE,
            "streamSid": SID,
            event: st.fixed_dictionaries(details),
        }
    )


TELEPHONE_FORMAT = {
    "encoding": st.just(TWILIO_MULAW),
    "sampleRate": st.just(8000),
    "channels": st.just(1),
}
TWILIO_MESSAGES: dict[type[TwilioMessage], st.SearchStrategy[dict[str, Any]]] = {
    Connected: st.fixed_dictionaries(
        {"event": st.just("connected"), "protocol": st.text(), "version": st.text()}
    ),
    Start: twilio(
        "start",
        {
            "accountSid": SID,
            "streamSid": SID,
            "callSid": st.text(min_size=1, max_size=128),
            "tracks": st.just(["inbound"]),
            "customParameters": st.dictionaries(st.text(max_size=20), st.text(max_size=40)),
            "mediaFormat": st.fixed_dictionaries(TELEPHONE_FORMAT),
        },
    ),
    Media: twilio(
        "media",
        {
            "track": st.just("inbound"),
            "chunk": SEQUENCE,
            "timestamp": SEQUENCE,
            "payload": audio(max_size=MAX_FRAME_BYTES).map(b64),
        },
    ),
    Mark: twilio("mark", {"name": st.text(max_size=100)}),
    Dtmf: twilio(
        "dtmf", {"track": st.just("inbound_track"), "digit": st.sampled_from(DTMF_DIGITS)}
    ),
    Stop: twilio("stop", {"accountSid": SID, "callSid": SID}),
}
TWILIO_EVENTS = ("connected", "start", "media", "mark", "dtmf", "stop")
ANY_TWILIO_MESSAGE = st.sampled_from(list(TWILIO_MESSAGES)).flatmap(
    lambda kind: TWILIO_MESSAGES[kind]
)


def parses_or_is_refused(raw: str | bytes) -> TwilioMessage | None:
    """The parser's answer: a message, or None for a TwilioProtocolError (and nothing else)."""
    try:
        return parse_message(raw)
    except TwilioProtocolError:
        return None


@given(st.sampled_from(list(TWILIO_MESSAGES)), st.data())
def test_every_twilio_message_parses_to_what_it_says(
    kind: type[TwilioMessage], data: st.DataObject
) -> None:
    sent = data.draw(TWILIO_MESSAGES[kind])
    message = parse_message(json.dumps(sent))
    assert isinstance(message, kind)
    match message:
        case Media(media=media):
            assert media.payload == base64.b64decode(sent["media"]["payload"])
        case Start(start=start):
            assert start.call_sid == sent["start"]["callSid"]
            assert start.custom_parameters == sent["start"]["customParameters"]
            check_media_format(message)
        case Mark(mark=mark):
            assert mark.name == sent["mark"]["name"]
        case Dtmf(dtmf=dtmf):
            assert dtmf.digit == sent["dtmf"]["digit"]


@given(TEXTS | JSON_VALUES.map(json.dumps))
def test_any_text_is_a_twilio_message_or_refused(raw: str | bytes) -> None:
    parses_or_is_refused(raw)


@given(st.data(), ANY_TWILIO_MESSAGE, JSON_VALUES)
def test_a_twilio_message_with_any_field_spoilt_parses_or_is_refused(
    data: st.DataObject, sent: dict[str, Any], spoilt: Any
) -> None:
    """One field, at any depth, given any JSON value (a wrong type, a huge number) or removed."""
    holder = sent
    while True:
        key = data.draw(st.sampled_from(sorted(holder)))
        if not isinstance(holder[key], dict) or not holder[key] or data.draw(st.booleans()):
            break
        holder = holder[key]
    if data.draw(st.booleans()):
        del holder[key]
    else:
        holder[key] = spoilt
    parses_or_is_refused(json.dumps(sent))


@given(st.text(max_size=20).filter(lambda event: event not in TWILIO_EVENTS), st.data())
def test_unknown_twilio_events_are_refused_by_name(event: str, data: st.DataObject) -> None:
    sent = data.draw(ANY_TWILIO_MESSAGE) | {"event": event}
    with pytest.raises(TwilioProtocolError, match="unknown event"):
        parse_message(json.dumps(sent))


def not_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return True
    return False


@given(TWILIO_MESSAGES[Media], st.text(max_size=60).filter(not_base64) | st.just(""))
def test_media_whose_payload_is_not_audio_is_refused(sent: dict[str, Any], payload: str) -> None:
    sent["media"]["payload"] = payload
    with pytest.raises(TwilioProtocolError, match=r"media\.payload"):
        parse_message(json.dumps(sent))


@given(TWILIO_MESSAGES[Media], audio(MAX_FRAME_BYTES + 1, MAX_FRAME_BYTES + 8_000))
def test_media_larger_than_a_frame_is_refused(sent: dict[str, Any], payload: bytes) -> None:
    sent["media"]["payload"] = b64(payload)
    with pytest.raises(TwilioProtocolError, match=r"media\.payload|exceeds"):
        parse_message(json.dumps(sent))


@given(ANY_TWILIO_MESSAGE, st.integers(0, 3 * MAX_MESSAGE_CHARS), st.booleans())
def test_messages_beyond_the_size_limit_are_refused_unread(
    sent: dict[str, Any], padding: int, as_bytes: bool
) -> None:
    raw = json.dumps(sent)
    raw += " " * max(0, MAX_MESSAGE_CHARS + 1 - len(raw) + padding)
    with pytest.raises(TwilioProtocolError, match="exceeds"):
        parse_message(raw.encode() if as_bytes else raw)


@given(
    st.fixed_dictionaries(
        {
            "encoding": st.sampled_from([TWILIO_MULAW, "audio/l16", "audio/x-alaw"]) | st.text(),
            "sampleRate": st.sampled_from([8000, 16000]) | st.integers(),
            "channels": st.sampled_from([1, 2]) | st.integers(),
        }
    ),
    TWILIO_MESSAGES[Start],
)
def test_a_stream_in_any_other_format_is_refused(
    media_format: dict[str, Any], sent: dict[str, Any]
) -> None:
    sent["start"]["mediaFormat"] = media_format
    start = parse_message(json.dumps(sent))
    assert isinstance(start, Start)
    if (media_format["encoding"], media_format["sampleRate"], media_format["channels"]) == (
        TWILIO_MULAW,
        8000,
        1,
    ):
        check_media_format(start)
    else:
        with pytest.raises(UnsupportedMediaFormatError):
            check_media_format(start)


@given(st.integers(DEEP, 10 * DEEP))
def test_deeply_nested_twilio_json_is_refused(depth: int) -> None:
    with pytest.raises(TwilioProtocolError):
        parse_message("[" * depth + "]" * depth)


# --- the stream token of a `start` -----------------------------------------------------------

TOKENS = StreamTokens("0123456789abcdef0123456789abcdef", ttl_s=60)
CALL = "CA2a5f2e0d4c1c2f1f2e3d4c5b6a7f8e9d"


@given(st.text(max_size=60), st.dictionaries(st.text(max_size=10), st.text(max_size=20)))
@settings(report_multiple_bugs=False)
@example(token="1.é", parameters={})
@example(token="².signature", parameters={})
@example(token="9" * 5_000 + ".signature", parameters={})
def test_a_token_we_did_not_issue_is_refused(token: str, parameters: dict[str, str]) -> None:
    with pytest.raises(StreamTokenError):
        TOKENS.check(token, CALL, parameters | {TOKEN_PARAMETER: token})


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=20)), st.text(max_size=20))
def test_a_token_lets_in_only_its_call_and_its_parameters(
    parameters: dict[str, str], changed: str
) -> None:
    token = TOKENS.issue(CALL, parameters)
    TOKENS.check(token, CALL, parameters | {TOKEN_PARAMETER: token})
    with pytest.raises(StreamTokenError):
        TOKENS.check(token, CALL + "0", parameters)
    swapped = parameters | {"agent_id": changed}
    if swapped != parameters:
        with pytest.raises(StreamTokenError):
            TOKENS.check(token, CALL, swapped)


# --- the browser's call protocol -------------------------------------------------------------

EXTRA_FIELDS = st.dictionaries(
    st.text(max_size=8).map(lambda key: f"x-{key}"), JSON_VALUES, max_size=3
)
"""Fields a newer client may add: ignored."""
WEB_MESSAGES: dict[type[ClientMessage], st.SearchStrategy[dict[str, Any]]] = {
    PressDigit: st.fixed_dictionaries(
        {"type": st.just("dtmf"), "digit": st.sampled_from(DTMF_DIGITS)}
    ),
    Played: st.fixed_dictionaries(
        {"type": st.just("played"), "mark": st.text(min_size=1, max_size=MAX_MARK_CHARS)}
    ),
    HangUpRequest: st.fixed_dictionaries({"type": st.just("hangup")}),
}
ANY_WEB_MESSAGE = st.sampled_from(list(WEB_MESSAGES)).flatmap(lambda kind: WEB_MESSAGES[kind])


def refusal_of(raw: str) -> ErrorCode | None:
    """None if the message is understood, else the code it is refused with (the parser raising
    anything else fails the test)."""
    try:
        parse_client_message(raw)
    except WebProtocolError as refused:
        return refused.code
    return None


@given(st.sampled_from(list(WEB_MESSAGES)), st.data(), EXTRA_FIELDS)
def test_every_client_message_is_understood_whatever_it_adds(
    kind: type[ClientMessage], data: st.DataObject, extra: dict[str, Any]
) -> None:
    sent = data.draw(WEB_MESSAGES[kind])
    raw = json.dumps(extra | sent)
    if len(raw) > MAX_TEXT_MESSAGE_CHARS:
        return
    message = parse_client_message(raw)
    assert isinstance(message, kind)
    assert message.model_dump() == sent


@given(st.text(max_size=300) | JSON_VALUES.map(json.dumps))
def test_any_text_is_a_client_message_or_refused(raw: str) -> None:
    assert refusal_of(raw) in (None, "invalid_message")


@given(ANY_WEB_MESSAGE, st.sampled_from(["type", "digit", "mark"]), JSON_VALUES, st.booleans())
def test_a_client_message_with_a_field_spoilt_is_understood_or_refused(
    sent: dict[str, Any], key: str, spoilt: Any, remove: bool
) -> None:
    if remove:
        sent.pop(key, None)
    else:
        sent[key] = spoilt
    assert refusal_of(json.dumps(sent)) in (None, "invalid_message")


@given(ANY_WEB_MESSAGE, st.integers(0, 2 * MAX_TEXT_MESSAGE_CHARS))
def test_client_messages_beyond_the_size_limit_are_refused(
    sent: dict[str, Any], padding: int
) -> None:
    raw = json.dumps(sent)
    raw += " " * (MAX_TEXT_MESSAGE_CHARS + 1 - len(raw) + padding)
    with pytest.raises(WebProtocolError, match="exceeds"):
        parse_client_message(raw)


@given(st.integers(DEEP, MAX_TEXT_MESSAGE_CHARS // 2))
def test_deeply_nested_client_json_is_refused(depth: int) -> None:
    with pytest.raises(WebProtocolError):
        parse_client_message("[" * depth + "]" * depth)


WEB_FORMATS = st.builds(
    AudioFormat,
    encoding=st.sampled_from(["pcm16", "mulaw"]),
    sample_rate=st.sampled_from([8_000, 16_000, 24_000, 48_000]),
    channels=st.sampled_from([1, 2]),
)


@given(audio(0, MAX_FRAME_BYTES + 100) | st.binary(max_size=50), WEB_FORMATS)
def test_a_caller_frame_is_whole_samples_within_a_frame_or_refused(
    frame: bytes, audio_format: AudioFormat
) -> None:
    usable = (
        0 < len(frame) <= MAX_FRAME_BYTES
        and len(frame) % (audio_format.bytes_per_sample * audio_format.channels) == 0
    )
    if usable:
        assert check_caller_frame(frame, audio_format) == frame
    else:
        with pytest.raises(WebProtocolError) as refused:
            check_caller_frame(frame, audio_format)
        assert refused.value.code == "invalid_audio"
