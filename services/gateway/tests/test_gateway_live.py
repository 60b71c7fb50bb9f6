"""The live feed: what happens in calls, fanned out to watchers with bounded queues, and served
as Server-Sent Events by the gateway app (real Redis, FastStream's test broker)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, get_args

import httpx

from voicebus_contracts import (
    SPEECH_16K,
    CallEnded,
    CallEvent,
    CallStarted,
    DtmfReceived,
    Envelope,
    Event,
    FinalTranscript,
    PartialTranscript,
    PlaybackEvent,
    ReplyEvent,
    ReplyPlaybackStarted,
    ReplyTextChunk,
    SpeechEvent,
    StageStamps,
    ToolCalled,
    ToolEvent,
    ToolReturned,
    envelope,
)
from voicebus_contracts.topics import CALLS, PLAYBACK, REPLIES, TOOLS, TRANSCRIPTS, Topic
from voicebus_gateway.__main__ import GatewayServer
from voicebus_gateway.live import CallNews, LiveFeed
from voicebus_gateway.live.feed import Watcher
from voicebus_gateway.settings import GatewaySettings
from voicebus_runtime.bus import publish

from .conftest import Running

RECEIVE_TIMEOUT_S = 5.0
"""Guards against a hung test only; nothing here asserts how fast anything is."""
STARTED = CallStarted(
    transport="web",
    agent_id="sales",
    gateway_id="gw-1",
    audio_in=SPEECH_16K,
    audio_out=SPEECH_16K,
)


def news(event: Event, call_id: str = "CA1", stamps: StageStamps | None = None) -> Envelope[Any]:
    return envelope(event, call_id=call_id, producer="test", stamps=stamps)


def final(text: str, call_id: str = "CA1") -> Envelope[Any]:
    return news(FinalTranscript(turn_id=f"{call_id}:t1", text=text), call_id)


async def read(watcher: Watcher) -> dict[str, Any] | None:
    async with asyncio.timeout(RECEIVE_TIMEOUT_S):
        update = await watcher.next()
    return None if update is None else json.loads(update)


def without_time(update: dict[str, Any] | None) -> dict[str, Any]:
    assert update is not None
    assert isinstance(update.pop("at"), float)
    return update


async def test_a_watcher_of_a_call_is_told_what_is_said_and_done_in_it_only() -> None:
    feed = LiveFeed()
    with feed.watch_call("CA1") as watcher:
        feed.tell(final("hello", "CA2"))
        feed.tell(final("hello"))
        feed.tell(news(ToolCalled(tool_call_id="tc1", name="check_order", arguments='{"n": 1}')))
        feed.tell(news(DtmfReceived(digit="5")))  # not told: the agent makes it a caller turn
        feed.tell(news(CallEnded(reason="caller hung up")))

        assert without_time(await read(watcher)) == {
            "call_id": "CA1",
            "type": "transcript.final",
            "turn_id": "CA1:t1",
            "text": "hello",
        }
        assert without_time(await read(watcher)) == {
            "call_id": "CA1",
            "type": "tool.called",
            "tool_call_id": "tc1",
            "name": "check_order",
            "arguments": '{"n": 1}',
        }
        assert without_time(await read(watcher)) == {
            "call_id": "CA1",
            "type": "call.ended",
            "reason": "caller hung up",
        }


async def test_a_watcher_of_the_list_is_told_of_each_calls_start_and_end_only() -> None:
    feed = LiveFeed()
    with feed.watch_list() as watcher:
        feed.tell(news(STARTED))
        feed.tell(final("hello"))
        feed.tell(news(CallEnded(reason="caller hung up"), "CA2"))

        assert without_time(await read(watcher)) == {
            "call_id": "CA1",
            "type": "call.started",
            "agent_id": "sales",
            "transport": "web",
            "direction": "inbound",
            "from_number": None,
            "to_number": None,
        }
        update = await read(watcher)
        assert update is not None
        assert (update["call_id"], update["type"]) == ("CA2", "call.ended")


async def test_a_reply_that_starts_playing_tells_how_long_each_stage_of_its_turn_took() -> None:
    feed = LiveFeed()
    stamps = StageStamps(
        speech_ended=100.0,
        turn_ended=100.5,
        transcribed=100.9,
        reply_first_text=101.0,
        tts_first_audio=101.05,
        playback_started=101.06,
    )
    with feed.watch_call("CA1") as watcher:
        feed.tell(news(ReplyPlaybackStarted(reply_id="CA1:t1:reply"), stamps=stamps))
        update = without_time(await read(watcher))
    assert update == {
        "call_id": "CA1",
        "type": "reply.latency",
        "reply_id": "CA1:t1:reply",
        "latency": {
            "endpoint_ms": 500.0,
            "stt_ms": 400.0,
            "first_text_ms": 100.0,
            "first_audio_ms": 50.0,
            "send_ms": 10.0,
            "voice_to_voice_ms": 1060.0,
        },
    }


async def test_a_watcher_that_falls_behind_loses_its_oldest_updates_and_is_told_how_many() -> None:
    feed = LiveFeed(queue_limit=3)
    with feed.watch_call("CA1") as watcher:
        for n in range(5):
            feed.tell(news(PartialTranscript(turn_id="CA1:t1", text=f"draft {n}", audio_ms=n)))
        assert await read(watcher) == {"type": "feed.lagged", "dropped": 2}
        texts = [update["text"] for _ in range(3) if (update := await read(watcher))]
        assert texts == ["draft 2", "draft 3", "draft 4"]
        feed.tell(final("hello"))
        update = await read(watcher)
        assert update is not None
        assert update["type"] == "transcript.final"


async def test_closing_the_feed_ends_every_watch_once_read_and_those_still_to_come() -> None:
    feed = LiveFeed()
    with feed.watch_call("CA1") as watching, feed.watch_list() as listing:
        feed.tell(final("hello"))
        feed.close()
        update = await read(watching)
        assert update is not None
        assert update["type"] == "transcript.final"
        assert await read(watching) is None
        assert await read(listing) is None
    with feed.watch_call("CA1") as late:
        assert await read(late) is None


class EventStream:
    """The updates of a Server-Sent Events response, one `data:` line each."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        self._lines = response.aiter_lines()

    async def next(self) -> dict[str, Any]:
        async with asyncio.timeout(RECEIVE_TIMEOUT_S):
            async for line in self._lines:
                if line.startswith("data: "):
                    update: dict[str, Any] = json.loads(line.removeprefix("data: "))
                    return update
        raise AssertionError("the stream ended")

    async def ended(self) -> bool:
        async with asyncio.timeout(RECEIVE_TIMEOUT_S):
            async for line in self._lines:
                assert not line.startswith("data: "), line
        return True


async def tell(running: Running, topic: Topic, env: Envelope[Any]) -> None:
    await publish(running.gateway.broker, topic, env)


async def test_the_gateway_streams_a_calls_news_as_it_reads_it_from_the_bus(
    running: Running,
) -> None:
    async with (
        httpx.AsyncClient(base_url=running.http_url) as client,
        client.stream("GET", "/api/calls/CA1/events") as response,
    ):
        events = EventStream(response)
        assert await events.next() == {"type": "feed.started"}
        await tell(running, TRANSCRIPTS, final("book a kayak", "CA2"))
        await tell(running, TRANSCRIPTS, final("book a kayak"))
        reply = ReplyTextChunk(
            reply_id="CA1:t1:reply", in_reply_to="CA1:t1", seq=0, text="Gladly.", last=True
        )
        await tell(running, REPLIES, news(reply))
        returned = ToolReturned(
            tool_call_id="tc1", name="book", result="booked", failed=False, duration_ms=12
        )
        await tell(running, TOOLS, news(returned))
        await tell(running, PLAYBACK, news(ReplyPlaybackStarted(reply_id="CA1:t1:reply")))

        kinds = [(await events.next())["type"] for _ in range(4)]
    assert kinds == ["transcript.final", "reply.text", "tool.returned", "reply.latency"]


async def test_the_gateway_streams_the_list_of_calls_as_calls_start_and_end(
    running: Running,
) -> None:
    async with (
        httpx.AsyncClient(base_url=running.http_url) as client,
        client.stream("GET", "/api/events") as response,
    ):
        events = EventStream(response)
        assert await events.next() == {"type": "feed.started"}
        await tell(running, CALLS, news(STARTED))
        await tell(running, TRANSCRIPTS, final("book a kayak"))
        await tell(running, CALLS, news(CallEnded(reason="caller hung up")))

        started, ended = await events.next(), await events.next()
    assert (started["type"], started["call_id"], started["agent_id"]) == (
        "call.started",
        "CA1",
        "sales",
    )
    assert (ended["type"], ended["reason"]) == ("call.ended", "caller hung up")


async def test_a_stopping_gateway_ends_the_live_feeds_rather_than_wait_for_them(
    served: GatewayServer, settings: GatewaySettings
) -> None:
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}") as client,
        client.stream("GET", "/api/calls/CA1/events") as response,
    ):
        events = EventStream(response)
        assert await events.next() == {"type": "feed.started"}
        served.should_exit = True
        assert await events.ended()


def test_call_news_is_every_event_of_the_topics_the_gateway_reads_about_calls() -> None:
    """An event missing from CallNews would be refused by the gateway's consumer."""

    def events(union: Any) -> set[type[Event]]:
        members, _ = get_args(union)  # Annotated[A | B | ..., discriminator]
        return set(get_args(members))

    read = (SpeechEvent, CallEvent, ReplyEvent, ToolEvent, PlaybackEvent)
    expected = set().union(*map(events, read)) | {FinalTranscript, PartialTranscript}
    assert events(CallNews) == expected
