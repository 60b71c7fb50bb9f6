"""The local stack's restart policy: crashed services come back, later and later while they keep
crashing at once, and a crash loop stops being restarted."""

from __future__ import annotations

from voicebus_devstack.restarts import MAX_DELAY_S, STABLE_S, Restarts


def test_a_crash_loop_waits_longer_each_time_and_then_gives_up() -> None:
    restarts = Restarts(delay_s=1.0, limit=4)
    delays = [restarts.after_exit("stt", uptime_s=2.0) for _ in range(5)]
    assert delays == [1.0, 2.0, 4.0, 8.0, None]


def test_a_process_that_ran_a_while_starts_the_count_over() -> None:
    restarts = Restarts(delay_s=1.0, limit=2)
    assert restarts.after_exit("agent-0", uptime_s=1.0) == 1.0
    assert restarts.after_exit("agent-0", uptime_s=1.0) == 2.0
    assert restarts.after_exit("agent-0", uptime_s=STABLE_S) == 1.0
    assert restarts.after_exit("agent-0", uptime_s=1.0) == 2.0


def test_each_process_is_counted_apart() -> None:
    restarts = Restarts(delay_s=1.0, limit=1)
    assert restarts.after_exit("agent-0", uptime_s=1.0) == 1.0
    assert restarts.after_exit("agent-1", uptime_s=1.0) == 1.0
    assert restarts.after_exit("agent-0", uptime_s=1.0) is None


def test_the_wait_is_capped() -> None:
    restarts = Restarts(delay_s=20.0, limit=10)
    assert [restarts.after_exit("tts", uptime_s=0.0) for _ in range(3)] == [
        20.0,
        MAX_DELAY_S,
        MAX_DELAY_S,
    ]


def test_no_restarts_at_all() -> None:
    assert Restarts(delay_s=1.0, limit=0).after_exit("gateway", uptime_s=STABLE_S) is None
