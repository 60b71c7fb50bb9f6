"""The live feed with VOICEBUS_REDACT_PII: watchers see what was said in a call redacted, as
analytics records it; without it, as it was said."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from voicebus_contracts import (
    CallEnded,
    Envelope,
    Event,
    FinalTranscript,
    PartialTranscript,
    ReplyTextChunk,
    ToolCalled,
    ToolReturned,
    envelope,
)
from voicebus_gateway.live import LiveFeed
from voicebus_gateway.live.feed import Watcher

RECEIVE_TIMEOUT_S = 5.0
"""Guards against a hung test only; nothing here asserts how fast anything is."""
SAID = "I'm jane@example.com, card 4111 1111 1111 1111, phone (415) 555-0134"
REDACTED = "I'm [email], card [card], phone [phone]"


def news(event: Event) -> Envelope[Any]:
    return envelope(event, call_id="CA1", producer="test")


async def told(watcher: Watcher) -> dict[str, Any]:
    async with asyncio.timeout(RECEIVE_TIMEOUT_S):
        update = await watcher.next()
    assert update is not None
    told: dict[str, Any] = json.loads(update)
    return told


def tell_a_call(feed: LiveFeed) -> None:
    feed.tell(news(PartialTranscript(turn_id="CA1:t1", text=SAID, audio_ms=900)))
    feed.tell(news(FinalTranscript(turn_id="CA1:t1", text=SAID)))
    feed.tell(
        news(ReplyTextChunk(reply_id="r1", in_reply_to="CA1:t1", seq=0, text=SAID, last=True))
    )
    feed.tell(news(ToolCalled(tool_call_id="tc1", name="crm", arguments=json.dumps({"q": SAID}))))
    feed.tell(
        news(ToolReturned(tool_call_id="tc1", name="crm", result=SAID, failed=False, duration_ms=9))
    )
    feed.tell(news(CallEnded(reason=f"the caller gave {SAID}")))


async def test_with_redaction_watchers_of_a_call_see_what_was_said_redacted() -> None:
    feed = LiveFeed(redact_pii=True)
    with feed.watch_call("CA1") as watcher:
        tell_a_call(feed)

        assert (await told(watcher))["text"] == REDACTED  # partial transcript
        final = await told(watcher)
        assert (final["type"], final["text"]) == ("transcript.final", REDACTED)
        assert (await told(watcher))["text"] == REDACTED  # the reply
        assert json.loads((await told(watcher))["arguments"]) == {"q": REDACTED}
        assert (await told(watcher))["result"] == REDACTED
        assert (await told(watcher))["reason"] == f"the caller gave {REDACTED}"


async def test_with_redaction_watchers_of_the_list_see_end_reasons_redacted() -> None:
    feed = LiveFeed(redact_pii=True)
    with feed.watch_list() as watcher:
        tell_a_call(feed)

        ended = await told(watcher)
        assert (ended["type"], ended["reason"]) == ("call.ended", f"the caller gave {REDACTED}")


async def test_without_redaction_watchers_see_what_was_said() -> None:
    feed = LiveFeed()
    with feed.watch_call("CA1") as watcher:
        tell_a_call(feed)

        assert (await told(watcher))["text"] == SAID
        assert (await told(watcher))["text"] == SAID
