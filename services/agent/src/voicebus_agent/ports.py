"""The agent's ports: where conversation history lives and what produces replies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from voicebus_contracts import (
    CallCommand,
    ReplyPaused,
    ToolCalled,
    ToolReturned,
    WorkflowProgressed,
)

if TYPE_CHECKING:
    from voicebus_agent.workflow.flow import WorkflowState


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


class Scene(Protocol):
    """What a model is told, and the tools it may use, for its next answer in a reply."""

    def instructions(self) -> str: ...

    def toolbox(self) -> Toolbox: ...


class Script(Protocol):
    """Gives a model its scene, reply by reply (a workflow changes it as the call moves on)."""

    async def scene(self, call_id: str, reply_id: str) -> Scene: ...


class WorkflowStates(Protocol):
    """Where each call is in its workflow, shared by every agent worker."""

    async def begin(self, call_id: str, reply_id: str) -> WorkflowState | None:
        """The call's state as it was when reply `reply_id` began: the current one the first
        time, the same one again when the reply is made again (a redelivered turn); None
        before the call's first turn."""
        ...

    async def save(self, call_id: str, state: WorkflowState) -> None: ...


class CommandSender(Protocol):
    """Sends a command to the gateway replica holding a call (`voicebus_runtime.CallControl`)."""

    async def send(self, call_id: str, command: CallCommand, *, cause: UUID | None = None) -> bool:
        """False when the call is not live anywhere."""
        ...


ActionLog = Callable[[str, ToolCalled | ToolReturned | WorkflowProgressed], Awaitable[None]]
"""Puts what the agent did in a call besides speaking on the record (`voicebus.tools`)."""
