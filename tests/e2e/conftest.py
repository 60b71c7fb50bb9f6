"""The whole product, started the way a user starts it (`voicebus-stack run`), on free ports; and
the ears of the tests that call it: Whisper transcribing what a caller heard."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from voicebus_audio import resample, to_mono_pcm16
from voicebus_contracts import SPEECH_16K, AudioFormat
from voicebus_devstack.fake_openai_realtime import FakeOpenAIRealtime
from voicebus_devstack.harness import RunningStack, StackNotReadyError, start_stack, stop_stack
from voicebus_devstack.loop_thread import LoopThread
from voicebus_stt.app import load_recognizer
from voicebus_stt.settings import SttSettings
from voicebus_stt.whisper import WhisperRecognizer

RECORD_WAIT_S = 30.0
"""Guards against a hung test only; nothing here asserts how fast anything is."""
FAULT_RECORD_WAIT_S = 90.0
"""The same, for a record that waits on a service coming back from a fault."""


def running_stack(workdir: Any, env: dict[str, str], replicas: str = "") -> RunningStack:
    try:
        return start_stack(workdir, env=env, replicas=replicas)
    except StackNotReadyError as failure:
        pytest.fail(str(failure))


def stopped(stack: RunningStack) -> None:
    orphans = stop_stack(stack)
    assert orphans == [], f"processes left after SIGTERM: {orphans}"
    assert stack.process.returncode == 0, stack.log_tail()


@pytest.fixture(scope="session")
def realtime_model() -> Iterator[tuple[LoopThread, FakeOpenAIRealtime]]:
    """The speech-to-speech model of the shared stack's realtime agents: a local server speaking
    OpenAI Realtime's protocol, on a loop of its own (its scripting runs there: `loop.run`)."""
    with LoopThread("realtime-model") as loop, loop.entered(FakeOpenAIRealtime()) as fake:
        yield loop, fake


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    realtime_model: tuple[LoopThread, FakeOpenAIRealtime],
) -> Iterator[RunningStack]:
    """The embedded default (`make run`'s: SQLite), shared by every end-to-end test that needs
    no special setup; its realtime agents talk to `realtime_model`. The voice path does not
    touch the database; the whole stack on PostgreSQL runs in test_call_observed, test_faults
    and test_api_fuzz."""
    _, model = realtime_model
    env = {
        "VOICEBUS_AGENT_REALTIME_BASE_URL": model.base_url,
        "VOICEBUS_AGENT_REALTIME_API_KEY": model.api_key,
    }
    running = running_stack(tmp_path_factory.mktemp("stack"), env)
    yield running
    stopped(running)


@pytest.fixture(scope="session")
def recognizer() -> WhisperRecognizer:
    return load_recognizer(SttSettings())


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def share_of_words(said: str, heard: str) -> float:
    """The share of the words of `said` found in `heard`."""
    return len(words(said) & words(heard)) / len(words(said))


def transcribe(recognizer: WhisperRecognizer, audio: bytes, fmt: AudioFormat) -> str:
    """What Whisper hears in `audio` of format `fmt`."""
    speech = resample(
        to_mono_pcm16(audio, fmt), from_rate=fmt.sample_rate, to_rate=SPEECH_16K.sample_rate
    )
    return recognizer.transcribe(speech.astype(np.float32) / 32768.0).text


async def wait_for_record(
    base_url: str, call_id: str, *, answered: bool = True, timeout_s: float = RECORD_WAIT_S
) -> dict[str, Any]:
    """The call's record once it shows the call ended (and, if `answered`, a reply's latency)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base_url) as client:
        while True:
            response = await client.get(f"/api/calls/{call_id}")
            if response.status_code == 200:
                record: dict[str, Any] = response.json()
                replies = [t for t in record["turns"] if t["role"] == "agent" and t["in_reply_to"]]
                done = not answered or (replies and replies[0]["latency"])
                if record["status"] == "completed" and done:
                    return record
            if time.monotonic() > deadline:
                raise AssertionError(f"incomplete record for {call_id}: {response.text}")
            await asyncio.sleep(0.5)


async def record_of(
    base_url: str,
    call_id: str,
    done: Callable[[dict[str, Any]], bool],
    *,
    timeout_s: float = FAULT_RECORD_WAIT_S,
) -> Any:
    """The call's record once `done` holds for it (the API answers 502 while analytics is down)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base_url) as client:
        while True:
            response = await client.get(f"/api/calls/{call_id}")
            if response.status_code == 200 and done(record := response.json()):
                return record
            assert time.monotonic() < deadline, f"record of {call_id}: {response.text}"
            await asyncio.sleep(0.5)


def replies_timed(record: dict[str, Any]) -> int:
    """How many of the call's agent turns answer the caller and have their latency on record."""
    return sum(1 for t in record["turns"] if t["in_reply_to"] and t["latency"])
