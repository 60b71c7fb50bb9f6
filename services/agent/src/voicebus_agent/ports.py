"""The agent's ports: where conversation history lives and what produces replies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    """One message of a call's conversation; `id` is the caller turn id or the reply id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    role: Literal["user", "agent"]
    text: str


class ConversationStore(Protocol):
    """A call's conversation history, shared by every agent worker."""

    async def append(self, call_id: str, message: Message) -> list[Message]:
        """Add `message` unless a message with its id is already there; return the history."""
        ...

    async def history(self, call_id: str) -> list[Message]:
        """The call's messages so far, oldest first."""
        ...


class Responder(Protocol):
    """Produces the agent's reply to the conversation so far, sentence by sentence."""

    def respond(self, history: Sequence[Message]) -> AsyncIterator[str]: ...
