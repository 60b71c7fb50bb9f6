"""Who has the floor in a web call, for the client's `state` messages."""

from __future__ import annotations

from voicebus_contracts import FinalTranscript, ReplyTextChunk, SpeechStarted, SpeechStopped
from voicebus_gateway.ports import CallActivity
from voicebus_gateway.web.protocol import ConversationState


def reply_of_mark(name: str) -> str:
    """The reply a playback mark follows: marks are named `<reply_id>:<sentence>:<seq>`."""
    return name.rsplit(":", 2)[0]


class TurnTaking:
    """The call's conversation state, derived from what the call's client is sent and reports.

    The state is the first of these that holds:

    - `user_speaking`: the caller started a turn (speech.started) and has not ended it
      (speech.stopped);
    - `agent_speaking`: agent audio was sent that the client has not reported played (a `played`
      of the last mark sent, with no audio after it) and was not told to clear;
    - `thinking`: the caller's last turn ended and no audio of a reply to it has been sent yet
      (a turn transcribed as nothing gets no reply: its empty transcript ends the wait);
    - `listening`: otherwise, the state a call starts in.

    Each method returns the new state when it changed, None when it did not.
    """

    def __init__(self) -> None:
        self.state: ConversationState = "listening"
        self._caller_speaking = False
        self._awaited_turn: str | None = None
        """The caller turn that ended and whose reply has not started playing."""
        self._answers: set[str] = set()
        """Replies (by id) to the awaited turn, as their text told."""
        self._replies_sent: set[str] = set()
        """Replies (by id) whose audio was sent since the awaited turn ended."""
        self._unplayed_mark: str | None = None
        """The last mark sent, until the client reports it played."""
        self._audio_since_mark = False

    def saw(self, activity: CallActivity) -> ConversationState | None:
        match activity:
            case SpeechStarted():
                self._caller_speaking = True
            case SpeechStopped(turn_id=turn_id):
                self._caller_speaking = False
                self._awaited_turn = turn_id
                self._answers.clear()
                self._replies_sent.clear()
            case FinalTranscript(turn_id=turn_id, text=text):
                if turn_id == self._awaited_turn and not text.strip():
                    self._awaited_turn = None
            case ReplyTextChunk(reply_id=reply_id, in_reply_to=turn_id):
                if turn_id is not None and turn_id == self._awaited_turn:
                    self._answers.add(reply_id)
                    self._end_wait_if_answered()
        return self._settle()

    def audio_sent(self) -> ConversationState | None:
        self._audio_since_mark = True
        return self._settle()

    def mark_sent(self, name: str) -> ConversationState | None:
        self._unplayed_mark = name
        self._audio_since_mark = False
        if self._awaited_turn is not None:
            self._replies_sent.add(reply_of_mark(name))
            self._end_wait_if_answered()
        return self._settle()

    def played(self, name: str) -> ConversationState | None:
        if name == self._unplayed_mark:
            self._unplayed_mark = None
        return self._settle()

    def cleared(self) -> ConversationState | None:
        self._unplayed_mark = None
        self._audio_since_mark = False
        return self._settle()

    def _end_wait_if_answered(self) -> None:
        # The reply's text and its first audio reach the gateway on different topics, in
        # either order: the wait ends once both are known.
        if self._answers & self._replies_sent:
            self._awaited_turn = None

    def _settle(self) -> ConversationState | None:
        state: ConversationState
        if self._caller_speaking:
            state = "user_speaking"
        elif self._audio_since_mark or self._unplayed_mark is not None:
            state = "agent_speaking"
        elif self._awaited_turn is not None:
            state = "thinking"
        else:
            state = "listening"
        if state == self.state:
            return None
        self.state = state
        return state
