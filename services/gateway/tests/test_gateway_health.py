from voicebus_contracts import ServiceHeartbeat
from voicebus_gateway.health import check_health
from voicebus_runtime.heartbeat import LivenessBoard


def beat(service: str) -> ServiceHeartbeat:
    return ServiceHeartbeat(service=service, instance=f"{service}-1")


def test_unavailable_lists_the_services_without_a_recent_beat() -> None:
    board = LivenessBoard(expected=("gateway", "media", "stt"), stale_after_s=10.0)
    board.saw(beat("gateway"), at=100.0)
    board.saw(beat("stt"), at=80.0)

    health = check_health(board, now=101.0)

    assert not health.ok
    assert health.model_dump(exclude_none=True) == {
        "status": "unavailable",
        "missing": ["media", "stt"],
    }


def test_ok_once_every_service_has_beaten() -> None:
    board = LivenessBoard(expected=("gateway", "media"), stale_after_s=10.0)
    board.saw(beat("gateway"), at=100.0)
    board.saw(beat("media"), at=95.0)

    health = check_health(board, now=101.0)

    assert health.ok
    assert health.model_dump(exclude_none=True) == {
        "status": "ok",
        "services": {"gateway": "up", "media": "up"},
    }
