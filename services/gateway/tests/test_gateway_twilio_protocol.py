import base64
import json
import re

import pytest

from voicebus_contracts import MAX_FRAME_BYTES, TELEPHONE
from voicebus_gateway.twilio.protocol import (
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioProtocolError,
    UnsupportedMediaFormatError,
    call_started,
    check_media_format,
    clear_message,
    mark_message,
    media_message,
    parse_message,
)

STREAM = "MZ18ad3ab5a668481ce02b83e7395059f0"
CALL = "CA2a5f2e0d4c1c2f1f2e3d4c5b6a7f8e9d"


def start_message(**media_format: object) -> dict[str, object]:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": "AC123",
            "streamSid": STREAM,
            "callSid": CALL,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            | media_format,
            "customParameters": {"agent_id": "support", "From": "+15550001111"},
        },
        "streamSid": STREAM,
    }


def media_message_from_twilio(payload: str) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": "3",
            "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": payload},
            "streamSid": STREAM,
        }
    )


def test_connected() -> None:
    message = parse_message('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
    assert message == Connected(event="connected", protocol="Call", version="1.0.0")


def test_start_carries_the_call_the_stream_and_its_parameters() -> None:
    message = parse_message(json.dumps(start_message()))
    assert isinstance(message, Start)
    assert message.sequence_number == 1
    assert message.start.call_sid == CALL
    assert message.start.stream_sid == STREAM
    assert message.start.custom_parameters == {"agent_id": "support", "From": "+15550001111"}
    check_media_format(message)

    started = call_started(
        message,
        gateway_id="gw-1",
        agent_id="support",
        direction="outbound",
        variables={"name": "Ada"},
    )
    assert started.agent_id == "support"
    assert started.gateway_id == "gw-1"
    assert started.from_number == "+15550001111"
    assert started.to_number is None
    assert started.audio_in == started.audio_out == TELEPHONE
    assert (started.direction, started.variables) == ("outbound", {"name": "Ada"})


def test_start_in_another_audio_format_is_refused() -> None:
    message = parse_message(json.dumps(start_message(encoding="audio/l16", sampleRate=16000)))
    assert isinstance(message, Start)
    with pytest.raises(UnsupportedMediaFormatError, match="audio/l16 16000 Hz"):
        check_media_format(message)


def test_media_decodes_the_caller_audio() -> None:
    audio = bytes(range(160))
    message = parse_message(media_message_from_twilio(base64.b64encode(audio).decode()))
    assert isinstance(message, Media)
    assert (message.media.chunk, message.media.timestamp) == (1, 5)
    assert message.media.payload == audio


def test_mark_dtmf_and_stop() -> None:
    mark = parse_message(
        '{"event": "mark", "sequenceNumber": "4", "streamSid": "MZ1", "mark": {"name": "r1:0"}}'
    )
    assert isinstance(mark, Mark)
    assert mark.mark.name == "r1:0"
    dtmf = parse_message(
        '{"event": "dtmf", "sequenceNumber": "5", "streamSid": "MZ1",'
        ' "dtmf": {"track": "inbound_track", "digit": "1"}}'
    )
    assert isinstance(dtmf, Dtmf)
    assert dtmf.dtmf.digit == "1"
    stop = parse_message(
        '{"event": "stop", "sequenceNumber": "6", "streamSid": "MZ1",'
        ' "stop": {"accountSid": "AC1", "callSid": "CA1"}}'
    )
    assert isinstance(stop, Stop)
    assert stop.stop.call_sid == "CA1"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"event": "hangup"}', "unknown event 'hangup'"),
        ('{"protocol": "Call"}', "unknown event None"),
        ('{"event": "media", "sequenceNumber": "3", "streamSid": "MZ1"}', "media: Field required"),
        (media_message_from_twilio("not base64!"), "invalid 'media' message: media.payload"),
        (media_message_from_twilio(""), "media.payload"),
    ],
)
def test_malformed_messages_say_what_is_wrong(raw: str, error: str) -> None:
    with pytest.raises(TwilioProtocolError, match=re.escape(error)):
        parse_message(raw)


def test_oversized_messages_are_refused() -> None:
    too_much_audio = base64.b64encode(bytes(MAX_FRAME_BYTES + 1)).decode()
    with pytest.raises(TwilioProtocolError, match=r"media\.payload: .* at most 32000 bytes"):
        parse_message(media_message_from_twilio(too_much_audio))
    with pytest.raises(TwilioProtocolError, match="exceeds"):
        parse_message(media_message_from_twilio("A" * 100_000))


def test_outbound_messages() -> None:
    assert json.loads(media_message("MZ1", b"\x01\x02")) == {
        "event": "media",
        "streamSid": "MZ1",
        "media": {"payload": "AQI="},
    }
    assert json.loads(mark_message("MZ1", "r1:0")) == {
        "event": "mark",
        "streamSid": "MZ1",
        "mark": {"name": "r1:0"},
    }
    assert json.loads(clear_message("MZ1")) == {"event": "clear", "streamSid": "MZ1"}
