"""The agent's core: what to say when a call starts and when the caller finishes a turn, and
what the caller heard of a reply they spoke over.

Plain Python: it takes contracts and ports and returns reply chunks; the app module publishes them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from voicebus_agent.ports import ConversationStore, Message, Responder
from voicebus_agent.turns import PausedReply
from voicebus_contracts import ReplyPaused, ReplyTextChunk

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
    """One call's conversation: its history in a store."""

    def __init__(self, *, call_id: str, store: ConversationStore) -> None:
        self.call_id = call_id
        self._store = store

    def greet(self, greeting: str) -> Reply:
        return self._opening("greeting", greeting)

    def leave_message(self, message: str) -> Reply:
        """The message left on an answering machine."""
        return self._opening("voicemail", message)

    def _opening(self, what: str, text: str) -> Reply:
        """A line the agent says unprompted (its reply id names what it is, once per call)."""
        return Reply(
            reply_id=f"{self.call_id}:{what}",
            in_reply_to=None,
            sentences=_from_list(split_sentences(text)),
        )

    async def answer(self, *, turn_id: str, caller_text: str, responder: Responder) -> Reply:
        """Record what the caller said and start `responder`'s reply to it."""
        history = await self._store.append(
            self.call_id, Message(id=turn_id, role="user", text=caller_text)
        )
        # On redelivery the history already goes past this turn: answer the turn as it was then.
        upto = next(i for i, m in enumerate(history) if m.id == turn_id) + 1
        reply_id = f"{turn_id}:reply"
        return Reply(
            reply_id=reply_id,
            in_reply_to=turn_id,
            sentences=responder.respond(history[:upto], call_id=self.call_id, reply_id=reply_id),
        )

    async def said(self, reply_id: str, sentences: Sequence[str]) -> None:
        """Record what the agent said: the reply's text chunks in seq order."""
        message = Message(
            id=reply_id,
            role="agent",
            text=" ".join(s for s in sentences if s),
            sentences=tuple(sentences),
        )
        await self._store.append(self.call_id, message)

    async def pause(self, paused: ReplyPaused) -> None:
        """The caller started speaking over a reply: remember how far they heard it until their
        turn is settled."""
        await self._store.pause(self.call_id, paused)

    async def paused_reply(self) -> PausedReply | None:
        """The reply the caller is speaking over, if any, with what it says."""
        pause = await self._store.paused(self.call_id)
        if pause is None:
            return None
        said = await self._message(pause.reply_id)
        return PausedReply(pause=pause, sentences=said.sentences if said else ())

    async def heard(self, reply_id: str, heard_text: str) -> None:
        """The caller interrupted reply `reply_id` having heard `heard_text` of it: that is all
        the agent said. A reply cut before its first word is dropped from the history."""
        said = await self._message(reply_id)
        if said is None:
            return
        cut = said.model_copy(update={"text": heard_text}) if heard_text else None
        await self._store.replace(self.call_id, reply_id, cut)

    async def settle(self, paused: ReplyPaused) -> None:
        """The caller's turn over the reply was settled (resumed or interrupted)."""
        await self._store.settle(self.call_id, paused)

    async def _message(self, message_id: str) -> Message | None:
        return next(
            (m for m in await self._store.history(self.call_id) if m.id == message_id), None
        )


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
