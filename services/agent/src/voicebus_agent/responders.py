"""Responders behind the Responder port.

`AcknowledgingResponder` is the deterministic one used offline; the LLM responder is in `llm`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from voicebus_agent.ports import Message


class AcknowledgingResponder:
    """Repeats what the caller said and invites the next turn: predictable, offline, instant."""

    async def respond(
        self, history: Sequence[Message], *, call_id: str, reply_id: str
    ) -> AsyncIterator[str]:
        heard = history[-1].text.strip() if history and history[-1].role == "user" else ""
        if heard:
            yield f"I heard you say: {heard.rstrip('.!?')}."
            yield "What else can I do for you?"
        else:
            yield "Sorry, I did not catch that. Could you say it again?"
