"""The whole product, started the way a user starts it (`voicebus-stack run`), on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from voicebus_devstack.harness import RunningStack, StackNotReadyError, start_stack, stop_stack


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    env: dict[str, str] = {}
    if request.param == "postgresql":
        env["VOICEBUS_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    try:
        running = start_stack(tmp_path_factory.mktemp(f"stack-{request.param}"), env=env)
    except StackNotReadyError as failure:
        pytest.fail(str(failure))
    yield running
    orphans = stop_stack(running)
    assert orphans == [], f"processes left after SIGTERM: {orphans}"
    assert running.process.returncode == 0, running.log_tail()
