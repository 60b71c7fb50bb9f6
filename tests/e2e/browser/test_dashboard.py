"""The dashboard as its users use it, in Chromium: a call from the browser's microphone, heard
and answered, followed live on the list of calls and on the call's own page; an agent created
through its form (the API's complaint shown next to the field it is about); the calls and their
figures.

What the caller says is eSpeak NG read by Whisper: its words are judged by their share, as in the
end-to-end tests.
"""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from voicebus_devstack.harness import RunningStack
from voicebus_devstack.speech import speech_pcm16
from voicebus_devstack.web_caller import WebCaller

from ..conftest import share_of_words, wait_for_record
from .conftest import CALLER_SENTENCE, LEAD_SILENCE_S, WAIT_MS, Dashboard, keep

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

POLL_MS = 100


def agent_audio_ms(talk: Locator) -> int:
    """How much of the agent's voice the page has played, as it tells."""
    return int(talk.get_attribute("data-agent-audio-ms") or 0)


def until_played_more_than(page: Page, talk: Locator, ms: int) -> None:
    for _ in range(WAIT_MS // POLL_MS):
        if agent_audio_ms(talk) > ms:
            return
        page.wait_for_timeout(POLL_MS)
    raise AssertionError(f"no more than {ms} ms of the agent's voice played")


def said(line: Locator) -> str:
    return line.locator(".said").inner_text()


def until_loaded(page: Page, player: Locator) -> float:
    """The length (s) of the audio `player` plays, once it has read it."""
    for _ in range(WAIT_MS // POLL_MS):
        seconds = player.evaluate("audio => audio.duration")
        if isinstance(seconds, float | int) and seconds > 0:
            return float(seconds)
        page.wait_for_timeout(POLL_MS)
    raise AssertionError("the recording did not load")


def test_a_caller_talks_from_the_browser_and_the_dashboard_follows_the_call_live(
    dashboard: Dashboard, agent: str
) -> None:
    calls = dashboard.open("#/calls")
    start = dashboard.open("#/start")
    talk = start.locator("section.talk")
    expect(talk.locator(f'option[value="{agent}"]')).to_be_attached()
    talk.get_by_role("combobox", name="Agent").select_option(agent)
    talk.get_by_role("button", name="Start call").click()

    expect(talk).to_have_attribute("data-call-id", re.compile(r"^web-"))
    call_id = talk.get_attribute("data-call-id")
    assert call_id is not None
    row = calls.locator(f'tr[data-call-id="{call_id}"]')
    expect(row).to_contain_text("live")  # the list heard of the call as it started
    watch = dashboard.open(f"#/calls/{call_id}")

    # The greeting plays, then the microphone says its sentence: the transcript shows it.
    expect(talk.locator(".line.agent").first).to_contain_text("Hello, I am listening.")
    until_played_more_than(start, talk, 0)
    greeting_ms = agent_audio_ms(talk)
    caller = talk.locator(".line.caller:not(.unsettled)")
    expect(caller).to_have_count(1)
    heard = said(caller)
    assert share_of_words(CALLER_SENTENCE, heard) >= 0.6, heard

    # The agent answers (the stack's echo agent repeats what it heard), and its voice plays.
    answer = talk.locator(".line.agent").nth(1)
    expect(answer).to_contain_text("I heard you say")
    until_played_more_than(start, talk, greeting_ms)
    expect(talk).to_have_attribute("data-state", "listening")
    keep(start, "talk")

    # The call's page followed it live, from the feed: the same words, each reply's latency.
    expect(watch.locator(".line.caller:not(.unsettled)")).to_have_count(1)
    assert said(watch.locator(".line.caller")) == heard
    expect(watch.locator(".line.agent").nth(1)).to_contain_text("I heard you say")
    expect(watch.locator(".waterfall .turn")).to_have_count(2)  # the greeting and the answer
    keep(watch, "call-live")

    talk.get_by_role("button", name="Hang up").click()
    expect(talk).to_have_attribute("data-state", "ended")
    expect(row).to_contain_text("ended")
    expect(watch.locator(".floor")).to_have_text("Call ended")
    assert until_loaded(watch, watch.locator("audio")) > LEAD_SILENCE_S  # the call, recorded
    keep(watch, "call")


def test_an_agent_is_created_through_its_form_and_given_a_document(
    dashboard: Dashboard, stack: RunningStack, tmp_path: Path
) -> None:
    form = dashboard.open("#/agents/new")
    agent_id = form.get_by_label("Id", exact=True)
    agent_id.fill("Boat Shop!")
    form.get_by_label("Name", exact=True).fill("Boat shop")
    form.get_by_label("Greeting").fill("Thank you for calling the boat shop.")
    form.get_by_label("Voice provider").select_option("espeak")
    form.get_by_label("Voice", exact=True).fill("en-gb")
    form.get_by_label("Pipeline").select_option("realtime")
    form.get_by_label("Realtime voice").fill("marin")
    tool = {
        "name": "check_order",
        "description": "Look an order up by its number.",
        "url": "https://shop.example.com/orders",
        "method": "GET",
    }
    form.get_by_label("HTTP tools").fill(json.dumps([tool]))
    form.get_by_label("Knowledge base id").fill("boat-shop")
    form.get_by_role("button", name="Create agent").click()

    # The API refuses the id: the form says why, next to the field, and tied to it.
    expect(agent_id).to_have_attribute("aria-invalid", "true")
    expect(agent_id).to_have_accessible_description(re.compile("should match pattern"))
    expect(form.locator('[data-field="agent_id"] .field-error')).to_be_visible()
    keep(form, "agent-refused")

    agent_id.fill("boat-shop")
    form.get_by_role("button", name="Create agent").click()
    expect(form.get_by_role("heading", name="Boat shop")).to_be_visible()
    expect(form).to_have_url(re.compile("#/agents/boat-shop$"))

    prices = tmp_path / "prices.md"
    prices.write_text("# Prices\n\nA kayak costs 15 euros an hour.\n\n# Hours\n\nOpen 9 to 6.\n")
    form.get_by_label("Add a document").set_input_files(prices)
    form.get_by_role("button", name="Upload").click()
    expect(form.locator(".documents")).to_contain_text("prices.md")
    keep(form, "agent")

    created = httpx.get(f"{stack.base_url}/api/agents/boat-shop").json()
    assert created["greeting"] == "Thank you for calling the boat shop."
    assert created["tts"] == {"provider": "espeak", "voice": "en-gb"}
    assert created["pipeline"] == "realtime"
    assert created["realtime"]["voice"] == "marin"
    assert created["realtime"]["model"] == "gpt-realtime"  # left empty: the default
    assert [t["name"] for t in created["tools"]] == ["check_order"]
    assert created["knowledge_base"]["id"] == "boat-shop"

    agents = dashboard.open("#/agents")
    expect(agents.locator('tr[data-agent-id="boat-shop"]')).to_contain_text("Boat shop")
    keep(agents, "agents")


@pytest.fixture
def recorded_call(stack: RunningStack) -> str:
    """A web call made (by the simulated caller) and recorded: one turn, answered."""

    async def call() -> str:
        async with WebCaller(f"{stack.ws_url}/web/call") as caller:
            await caller.wait_for_agent_audio(after=0.0, quiet_s=1.0)
            spoken = await caller.say(speech_pcm16("What time do you open?"))
            await caller.wait_for_agent_audio(after=spoken, quiet_s=1.0)
        await wait_for_record(stack.base_url, caller.call_id)
        return caller.call_id

    # Playwright's sync API runs an event loop in this thread: the call runs in one of its own.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, call()).result()


def test_the_calls_and_their_figures_are_shown(dashboard: Dashboard, recorded_call: str) -> None:
    calls = dashboard.open("#/calls")
    expect(calls.locator(f'tr[data-call-id="{recorded_call}"]')).to_contain_text("ended")
    keep(calls, "calls")

    analytics = dashboard.open("#/analytics")
    for measure in ("End of turn", "Transcript", "First text", "First audio", "Sent"):
        expect(analytics.get_by_role("img", name=measure, exact=True)).to_be_visible()
    voice_to_voice = analytics.locator(".tile", has_text="Voice to voice, p50")
    expect(voice_to_voice).to_contain_text(re.compile(r"\d ms"))
    keep(analytics, "analytics")


def test_a_phone_call_that_cannot_be_placed_says_why(dashboard: Dashboard) -> None:
    """The stack has no Twilio account: the form shows why, after the bad number's complaint."""
    phone = dashboard.open("#/start").locator("form")
    to = phone.get_by_label("To", exact=True)
    to.fill("555")
    phone.get_by_role("button", name="Place call").click()
    expect(to).to_have_accessible_description(re.compile("is not an E.164 phone number"))

    to.fill("+14155550100")
    phone.get_by_role("button", name="Place call").click()
    expect(to).not_to_have_attribute("aria-invalid", "true")
    expect(phone.locator(".form-error")).to_contain_text("is not set")
