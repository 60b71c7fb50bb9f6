import pytest

from voicebus_gateway.settings import GatewaySettings
from voicebus_runtime.settings import BusSettings


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEBUS_GATEWAY_ID", "gw-2")
    monkeypatch.setenv("VOICEBUS_GATEWAY_REQUIRED_SERVICES", "gateway, media,,stt")
    monkeypatch.setenv("VOICEBUS_PORT", "9090")
    settings = GatewaySettings()
    assert settings.resolved_gateway_id(BusSettings()) == "gw-2"
    assert settings.required_services == ("gateway", "media", "stt")
    assert settings.port == 9090


def test_gateway_id_defaults_to_the_instance_id_safe_for_a_topic_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VOICEBUS_GATEWAY_ID", raising=False)
    bus = BusSettings(instance_id="pod/gateway 7:1234")
    assert GatewaySettings().resolved_gateway_id(bus) == "pod-gateway-7-1234"
