"""The agent's core: what to say when a call starts and when the caller finishes a turn.

Plain Python: it takes contracts and ports and returns reply chunks; the app module publishes them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from voicebus_agent.ports import ConversationStore, Message, Responder
from voicebus_contracts import ReplyTextChunk

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """Cut text at sentence boundaries, so each sentence can be spoken as soon as it is known."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


@dataclass(frozen=True)
class Reply:
    """A reply in the making: its id, the caller turn it answers, its sentences as they come."""

    reply_id: str
    in_reply_to: str | None
    sentences: AsyncIterator[str]


async def _from_list(sentences: Iterable[str]) -> AsyncIterator[str]:
    for sentence in sentences:
        yield sentence


class Conversation:
    """One call's conversation: history in a store, replies from a responder."""

    def __init__(self, *, call_id: str, store: ConversationStore, responder: Responder) -> None:
        self.call_id = call_id
        self._store = store
        self._responder = responder

    def greet(self, greeting: str) -> Reply:
        return Reply(
            reply_id=f"{self.call_id}:greeting",
            in_reply_to=None,
            sentences=_from_list(split_sentences(greeting)),
        )

    async def answer(self, *, turn_id: str, caller_text: str) -> Reply:
        """Record what the caller said and start the reply to it."""
        history = await self._store.append(
            self.call_id, Message(id=turn_id, role="user", text=caller_text)
        )
        # On redelivery the history already goes past this turn: answer the turn as it was then.
        upto = next(i for i, m in enumerate(history) if m.id == turn_id) + 1
        return Reply(
            reply_id=f"{turn_id}:reply",
            in_reply_to=turn_id,
            sentences=self._responder.respond(history[:upto]),
        )

    async def said(self, reply_id: str, text: str) -> None:
        """Record what the agent said."""
        await self._store.append(self.call_id, Message(id=reply_id, role="agent", text=text))


async def chunks_of(reply: Reply) -> AsyncIterator[ReplyTextChunk]:
    """The reply's sentences as bus chunks, each sent the moment it is known, then an empty `last`.

    The end is its own chunk so no sentence waits for the next one just to learn it was the last.
    """
    seq = 0
    async for sentence in reply.sentences:
        yield ReplyTextChunk(
            reply_id=reply.reply_id,
            in_reply_to=reply.in_reply_to,
            seq=seq,
            text=sentence,
            last=False,
        )
        seq += 1
    yield ReplyTextChunk(
        reply_id=reply.reply_id, in_reply_to=reply.in_reply_to, seq=seq, text="", last=True
    )
