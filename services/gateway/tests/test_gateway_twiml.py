import xml.etree.ElementTree as ET

import pytest

from voicebus_gateway.settings import GatewaySettings
from voicebus_gateway.twilio.twiml import connect_to_stream, dial, media_stream_url

from .conftest import stream_of


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://voice.example.com", "wss://voice.example.com/twilio/media"),
        ("https://voice.example.com/", "wss://voice.example.com/twilio/media"),
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/twilio/media"),
        ("https://example.com/voicebus", "wss://example.com/voicebus/twilio/media"),
        (None, "wss://abc.ngrok.app/twilio/media"),
    ],
)
def test_media_stream_url(public_url: str | None, expected: str) -> None:
    assert media_stream_url(public_url=public_url, host="abc.ngrok.app") == expected


def test_connect_to_stream_passes_parameters_escaped() -> None:
    parameters = {"agent_id": "sales & support", "From": "+15550001111", "token": '<"x">'}
    twiml = connect_to_stream("wss://voice.example.com/twilio/media", parameters)
    assert stream_of(twiml) == ("wss://voice.example.com/twilio/media", parameters)


@pytest.mark.parametrize(
    ("to", "target"),
    [("+14155550100", "./Dial/Number"), ("sip:desk@example.com", "./Dial/Sip")],
)
def test_dial_hands_the_call_to_a_number_or_a_sip_uri(to: str, target: str) -> None:
    element = ET.fromstring(dial(to)).find(target)
    assert element is not None
    assert element.text == to


def test_public_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        GatewaySettings(public_url="voice.example.com")
