import xml.etree.ElementTree as ET

import httpx
import pytest

from voicebus_gateway.app import create_app
from voicebus_gateway.settings import GatewaySettings
from voicebus_gateway.twiml import connect_to_stream, media_stream_url
from voicebus_runtime.settings import BusSettings


def stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    stream = root.find("./Connect/Stream")
    assert stream is not None
    parameters = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    return stream.attrib["url"], parameters


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


def test_connect_to_stream_names_the_agent_and_the_numbers() -> None:
    twiml = connect_to_stream(
        "wss://voice.example.com/twilio/media",
        agent_id="sales & support",
        from_number="+15550001111",
        to_number=None,
    )
    url, parameters = stream_of(twiml)
    assert url == "wss://voice.example.com/twilio/media"
    assert parameters == {"agent_id": "sales & support", "From": "+15550001111"}


def test_public_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        GatewaySettings(public_url="voice.example.com")


async def answer(settings: GatewaySettings, host: str) -> httpx.Response:
    app = create_app(settings, BusSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
        return await client.post(
            "/twilio/voice",
            data={"CallSid": "CA1", "From": "+15550001111", "To": "+15550002222"},
        )


async def test_voice_webhook_answers_with_the_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEBUS_PUBLIC_URL", "https://voice.example.com")
    monkeypatch.setenv("VOICEBUS_GATEWAY_DEFAULT_AGENT", "support")
    response = await answer(GatewaySettings(), host="10.0.0.7:8080")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    url, parameters = stream_of(response.text)
    assert url == "wss://voice.example.com/twilio/media"
    assert parameters == {"agent_id": "support", "From": "+15550001111", "To": "+15550002222"}


async def test_voice_webhook_falls_back_to_the_host_header() -> None:
    response = await answer(GatewaySettings(public_url=None), host="abc.ngrok.app")
    url, parameters = stream_of(response.text)
    assert url == "wss://abc.ngrok.app/twilio/media"
    assert parameters["agent_id"] == "default"
