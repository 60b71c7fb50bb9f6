"""The agent's ports: where conversation history lives and what produces replies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from voicebus_contracts import ReplyPaused


class Message(BaseModel):
    """One message of a call's conversation; `id` is the caller turn id or the reply id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    role: Literal["user", "agent"]
    text: str
    """What the conversation holds: for the agent, what the caller heard of its reply."""
    sentences: tuple[str, ...] = ()
    """The agent's reply as sent to be spoken, one entry per text chunk (index = chunk seq),
    kept whole when the caller interrupted it, so how far they heard can be recomputed."""


class ConversationStore(Protocol):
    """A call's conversation history, shared by every agent worker, and the reply the caller
    is speaking over, if any (barge-in)."""

    async def append(self, call_id: str, message: Message) -> list[Message]:
        """Add `message` unless a message with its id is already there; return the history."""
        ...

    async def history(self, call_id: str) -> list[Message]:
        """The call's messages so far, oldest first."""
        ...

    async def replace(self, call_id: str, message_id: str, message: Message | None) -> None:
        """Put `message` in the place of the message `message_id`, or remove that message when
        `message` is None; nothing when it is not there."""
        ...

    async def pause(self, call_id: str, paused: ReplyPaused) -> None:
        """Remember that the caller is speaking over a reply, unless the pause of that caller
        turn was already settled (a redelivered pause must not come back)."""
        ...

    async def paused(self, call_id: str) -> ReplyPaused | None:
        """The call's pause waiting for the caller's turn to be settled, if any."""
        ...

    async def settle(self, call_id: str, paused: ReplyPaused) -> None:
        """The pause was resolved (resumed or cancelled): forget it, for good."""
        ...


class Responder(Protocol):
    """Produces the agent's reply to the conversation so far, sentence by sentence."""

    def respond(
        self, history: Sequence[Message], *, call_id: str, reply_id: str
    ) -> AsyncIterator[str]: ...


class ToolCall(BaseModel):
    """The model asked for a tool: its name and its arguments, as the JSON text it wrote."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str


class Toolbox(Protocol):
    """The tools a model may call during a call."""

    def definitions(self) -> list[dict[str, Any]]:
        """The tools, as chat-completions `tools` entries (type, name, description, JSON-schema
        parameters)."""
        ...

    async def run(self, call: ToolCall, *, call_id: str, reply_id: str) -> str:
        """Carry out `call` in call `call_id`, while the agent speaks reply `reply_id`; the
        result, for the model. A tool that fails or is misused answers with the error (the
        model can tell the caller); it does not raise."""
        ...
