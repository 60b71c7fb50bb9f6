"""The dashboard in a real browser: the whole product started as a user starts it (one stack, on
SQLite, shared by the browser tests), and Debian's Chromium driven by Playwright, its microphone
a file the test wrote. Playwright's own browsers are never downloaded; `make test` installs
Chromium when it is missing.

Screenshots of every page the tests look at are kept in test-artifacts/browser/.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from voicebus_devstack.harness import RunningStack
from voicebus_devstack.speech import speech_pcm16

from ..conftest import running_stack, stopped

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "browser"
CALLER_SENTENCE = "Please book a table for two people tomorrow evening."
MICROPHONE_RATE = 48_000
LEAD_SILENCE_S = 3.0
"""Before the caller speaks: the greeting plays."""
TRAILING_SILENCE_S = 30.0
"""After: the turn ends, and the reply is heard (the file is read once, then it is quiet)."""
AGENT = {
    "agent_id": "browser-echo",
    "name": "Echo",
    "greeting": "Hello, I am listening.",
}
"""The agent the browser calls: a short greeting, then the stack's echo of what it heard."""
WAIT_MS = 60_000
"""Guards against a hung test only; nothing here asserts how fast anything is."""

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = running_stack(tmp_path_factory.mktemp("stack-browser"), {})
    yield running
    stopped(running)


@pytest.fixture(scope="package")
def agent(stack: RunningStack) -> str:
    response = httpx.post(f"{stack.base_url}/api/agents", json=AGENT)
    assert response.status_code == 201, response.text
    return AGENT["agent_id"]


@pytest.fixture(scope="package")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone hears: silence, CALLER_SENTENCE (eSpeak NG), silence."""
    speech = speech_pcm16(CALLER_SENTENCE, sample_rate=MICROPHONE_RATE)
    silence = np.zeros(int(MICROPHONE_RATE * LEAD_SILENCE_S), np.int16)
    after = np.zeros(int(MICROPHONE_RATE * TRAILING_SILENCE_S), np.int16)
    path = tmp_path_factory.mktemp("microphone") / "caller.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(MICROPHONE_RATE)
        wav.writeframes(np.concatenate([silence, speech, after]).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="package")
def browser(microphone: Path) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}; `make test` installs it (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-ui-for-media-stream",  # the microphone is allowed without asking
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone}%noloop",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield browser
        browser.close()


class Dashboard:
    """Pages of the dashboard of `stack` in one browser context; uncaught errors are kept."""

    def __init__(self, context: BrowserContext) -> None:
        self._context = context
        self.errors: list[str] = []

    def open(self, address: str) -> Page:
        """A new page at `address` ("#/calls")."""
        page = self._context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        page.goto(f"/{address}")
        return page


@pytest.fixture
def dashboard(stack: RunningStack, browser: Browser) -> Iterator[Dashboard]:
    context = browser.new_context(
        base_url=stack.base_url,
        viewport={"width": 1280, "height": 860},
        permissions=["microphone"],
    )
    opened = Dashboard(context)
    yield opened
    context.close()
    assert opened.errors == [], "the dashboard's scripts failed"


def keep(page: Page, name: str) -> None:
    """A screenshot of the whole of `page`, kept as test-artifacts/browser/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
