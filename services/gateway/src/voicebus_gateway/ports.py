"""The gateway's ports: where a call's playback goes, the clock that paces it, the carrier that
places calls."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from voicebus_contracts import (
    FinalTranscript,
    PartialTranscript,
    ReplyCancelled,
    ReplyTextChunk,
    SpeechStarted,
    SpeechStopped,
)
from voicebus_contracts.events import E164_PATTERN, MAX_VARIABLES

CallActivity = (
    SpeechStarted
    | SpeechStopped
    | PartialTranscript
    | FinalTranscript
    | ReplyTextChunk
    | ReplyCancelled
)
"""What a call's client may show while it runs: the caller speaking, what was heard, the reply
(and where an interruption cut it)."""


class AudioSink(Protocol):
    """The caller's end of a call, speaking the transport's own messages (Twilio, web, ...)."""

    async def send_audio(self, audio: bytes) -> None:
        """Send one frame of audio, already in the call's outbound format."""
        ...

    async def send_mark(self, name: str) -> None:
        """Ask the transport to echo `name` once everything sent before it has played."""
        ...

    async def clear(self) -> None:
        """Drop audio the transport has buffered but not yet played."""
        ...


class CallControlError(Exception):
    """A call-control request the call's transport cannot carry out; the message says why."""


class CallLeg(Protocol):
    """What only the call's transport can do: end it, hand it over, show the caller progress."""

    async def hang_up(self) -> None:
        """End the caller's stream; the call's relay then ends the call."""
        ...

    async def transfer(self, to: str) -> None:
        """Hand the caller to `to` (E.164 or SIP URI); raises CallControlError if unsupported."""
        ...

    async def show(self, activity: CallActivity) -> None:
        """Tell the caller's client what is happening (transcripts, agent text), if it shows it."""
        ...


class Clock(Protocol):
    """Monotonic time in seconds, and sleeping on it."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: `time.monotonic` and `asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_E164 = re.compile(E164_PATTERN)


def _e164(number: str) -> str:
    if not _E164.fullmatch(number):
        raise ValueError(f"{number!r} is not an E.164 phone number (like +14155550100)")
    return number


E164 = Annotated[
    str,
    AfterValidator(_e164),
    Field(json_schema_extra={"pattern": _E164.pattern, "examples": ["+14155550100"]}),
]
"""A phone number in E.164 form: +14155550100."""


class OutboundCall(BaseModel):
    """A phone call voicebus places: to whom, from which of our numbers, with which agent."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)

    to: E164
    from_number: E164 | None = Field(default=None, alias="from")
    """Our caller id; None: the configured default number."""
    agent_id: str | None = Field(default=None, min_length=1, max_length=128)
    """The agent that talks; None: the default agent."""
    variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES)
    """Values for the agent (a name, an order number), carried on the call's CallStarted."""


class DialError(Exception):
    """The carrier refused to place a call; the message says why, for the API's caller."""


class Dialer(Protocol):
    """Places phone calls through the carrier."""

    async def dial(self, call: OutboundCall) -> str:
        """Place `call`; the carrier's id for it (Twilio's CallSid), which its events carry.

        Raises DialError when the carrier refuses (bad number, no caller id, bad credentials).
        """
        ...
