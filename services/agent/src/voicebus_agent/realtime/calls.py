"""Realtime calls on the bus: each call of a realtime agent held by a session with its
speech-to-speech model, in the agent worker that owns the call's partition.

In: the call's audio (`voicebus.audio.in.realtime`), its start and end, and the gateway's
`ReplyPaused` (how far the caller heard a reply they spoke over, from the transport's mark
echoes). Out, in the words of the cascaded pipeline, so analytics, the dashboard and webhooks
work unchanged: the caller's speech and transcripts, the model's replies as voiced text (TTS
leaves them alone) and its audio straight to the call's gateway, each reply's stamps (the end of
the caller's speech, the model's end of turn, its first audio), and the tools it calls.

A worker that takes a call over (the one before it died, or the partition moved) opens a new
session on the call's next audio, primed with the conversation so far from Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from faststream.kafka import KafkaBroker

from voicebus_agent.ports import ConversationStore, Message, Toolbox, ToolCall
from voicebus_agent.realtime.session import (
    CallerPaused,
    CallerSaid,
    CallerSpeaking,
    ModelAudio,
    ModelSaid,
    RealtimeConnector,
    RealtimeSession,
    ResponseDone,
    SessionEvent,
    SessionSetup,
    ToolRequested,
)
from voicebus_contracts import (
    AudioFormat,
    CallStarted,
    CancelReply,
    Envelope,
    FinalTranscript,
    HangUp,
    InboundAudioFrame,
    OutboundAudioChunk,
    PausePlayback,
    ReplyCancelled,
    ReplyPaused,
    ReplyTextChunk,
    SpeechStarted,
    SpeechStopped,
    StageStamps,
    envelope,
)
from voicebus_contracts.agents import AgentSpec, RealtimeModel
from voicebus_contracts.topics import REPLIES, SPEECH, TRANSCRIPTS, Topic, gateway_topic
from voicebus_runtime.bus import publish
from voicebus_runtime.control import CallControl
from voicebus_runtime.registry import CallRegistry

log = logging.getLogger(__name__)

SERVICE = "agent"
GREETING_INSTRUCTIONS = "Greet the caller by saying exactly this, and nothing more: {greeting}"
UNAVAILABLE = "Sorry, this line cannot take your call right now. Please call again later."
"""Said (by TTS, the model being out of reach) before hanging up on a call whose session did
not open."""
CALLS_ENDED_REMEMBERED = 1_000
"""Calls whose end this worker saw: their late audio opens no session."""
REPLIES_REMEMBERED = 4
"""A call's latest replies: the one the caller speaks over may have been generated whole (the
model speaks faster than it is played) and still be playing."""
FRAMES_REMEMBERED = 1_500
"""When the caller's recent audio came in (a minute of 40 ms frames): the end of their speech
is dated by the frame the model heard it end in."""


@dataclass
class _Reply:
    """A response of the model, as the call's reply."""

    reply_id: str
    in_reply_to: str | None
    stamps: StageStamps
    response_id: str = ""
    item_id: str = ""
    chunk_ms: list[float] = field(default_factory=list)
    """How long each audio chunk sent of it plays."""
    text: str = ""


@dataclass
class _Call:
    call_id: str
    agent: AgentSpec | None
    audio_out: AudioFormat
    gateway_id: str
    session: RealtimeSession
    heard_ms: float = 0.0
    """How much of the caller's audio this session heard."""
    frames: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=FRAMES_REMEMBERED)
    )
    """(where in the session's audio, in ms, a frame began; when the gateway received it)"""
    turn: tuple[str, StageStamps] | None = None
    """The caller's latest turn, and its stamps: the next response answers it."""
    reply: _Reply | None = None
    """The response being spoken."""
    replies: deque[_Reply] = field(default_factory=lambda: deque(maxlen=REPLIES_REMEMBERED))
    """The latest replies, `reply` included."""
    interrupted: set[str] = field(default_factory=set)
    """Responses the caller spoke over: what more comes of them is not played."""
    tools_answered: bool = False
    """Tool results went back to the model during the response: once it is done, the model
    is asked to go on (one response at a time)."""
    listening: asyncio.Task[None] | None = None

    def begin(self, reply: _Reply) -> _Reply:
        self.reply = reply
        self.replies.append(reply)
        return reply

    def recent(self, reply_id: str) -> _Reply | None:
        return next((reply for reply in self.replies if reply.reply_id == reply_id), None)

    def received_at(self, audio_ms: int) -> float | None:
        """When the gateway received the audio `audio_ms` into the session."""
        found = None
        for began, received in self.frames:
            if began > audio_ms:
                break
            found = received
        return found


def _stamped_first_audio(stamps: StageStamps) -> StageStamps:
    """A realtime reply's first audio: the model's answer begins (its first text, in the
    cascaded pipeline's stages) and is voiced at once (first audio), so the model's time
    shows as the agent's stage and the two pipelines' waterfalls compare."""
    now = time.time()
    return stamps.stamp(reply_first_text=now, tts_first_audio=now)


class RealtimeCalls:
    """The realtime calls this worker holds, and what it does with their events (each handled
    in its call's lane; the model's events are handled by a task of each call)."""

    def __init__(
        self,
        *,
        broker: KafkaBroker,
        connector: RealtimeConnector,
        store: ConversationStore,
        registry: CallRegistry,
        control: CallControl,
        agent_of: Callable[[str], AgentSpec | None],
        toolbox_of: Callable[[AgentSpec | None], Toolbox],
        default_instructions: str,
        default_greeting: str,
    ) -> None:
        self._broker = broker
        self._connector = connector
        self._store = store
        self._registry = registry
        self._control = control
        self._agent_of = agent_of
        self._toolbox_of = toolbox_of
        self._default_instructions = default_instructions
        self._default_greeting = default_greeting
        self._calls: dict[str, _Call] = {}
        self._ended: deque[str] = deque(maxlen=CALLS_ENDED_REMEMBERED)

    def holds(self, call_id: str) -> bool:
        return call_id in self._calls

    async def started(self, env: Envelope[CallStarted]) -> None:
        """Open the call's session (unless its first audio, which travels on a topic of its
        own, came first) and have the model greet the caller, once."""
        started = env.event
        agent = self._agent_of(started.agent_id)
        call = self._calls.get(env.call_id) or await self._open(
            env.call_id, agent, audio_out=started.audio_out, gateway_id=started.gateway_id
        )
        if call is None:
            return
        reply_id = f"{env.call_id}:greeting"
        if any(m.id == reply_id for m in await self._store.history(env.call_id)):
            return  # greeted before this worker took the call over
        greeting = (agent.greeting if agent else None) or self._default_greeting
        call.begin(_Reply(reply_id=reply_id, in_reply_to=None, stamps=env.stamps))
        await call.session.respond(GREETING_INSTRUCTIONS.format(greeting=greeting))

    async def heard(self, env: Envelope[InboundAudioFrame]) -> None:
        """The caller's audio, on to the model; a call this worker does not hold yet (it took
        the call over) gets a new session, primed with the conversation so far."""
        call = self._calls.get(env.call_id) or await self._take_over(env.call_id)
        if call is None:
            return
        frame = env.event
        call.frames.append((call.heard_ms, frame.received_at))
        call.heard_ms += frame.format.duration_ms(len(frame.audio))
        await call.session.hear(frame.audio)

    async def paused(self, env: Envelope[ReplyPaused]) -> None:
        """The caller spoke over a reply (the model stopped it itself): cut the model's memory
        of it, and the call's history, to what the caller heard; drop the rest at the gateway."""
        call = self._calls.get(env.call_id)
        paused = env.event
        reply = call.recent(paused.reply_id) if call is not None else None
        if call is None or reply is None:
            return
        if call.reply is reply:
            call.reply = None
        call.interrupted.add(reply.response_id)
        sent = len(reply.chunk_ms)
        heard_chunks = round(paused.fraction * sent) if paused.sentence == 0 else sent
        heard_ms = round(sum(reply.chunk_ms[:heard_chunks]))
        heard_text = reply.text[: round(len(reply.text) * heard_chunks / sent)] if sent else ""
        log.info(
            "call %s: reply %s interrupted, %d of %d ms heard",
            env.call_id,
            reply.reply_id,
            heard_ms,
            round(sum(reply.chunk_ms)),
        )
        if reply.item_id:
            await call.session.truncate(reply.item_id, audio_end_ms=heard_ms)
        await self._control.send(
            env.call_id, CancelReply(reply_id=reply.reply_id), cause=env.event_id
        )
        cancelled = ReplyCancelled(reply_id=reply.reply_id, heard_text=heard_text)
        await self._publish(call.call_id, REPLIES, cancelled, stamps=reply.stamps)
        if reply.text:
            await self._store.replace(
                env.call_id,
                reply.reply_id,
                Message(id=reply.reply_id, role="agent", text=heard_text) if heard_text else None,
            )

    async def ended(self, call_id: str) -> None:
        self._ended.append(call_id)
        call = self._calls.pop(call_id, None)
        if call is not None:
            await self._close(call)

    async def close(self) -> None:
        for call_id in list(self._calls):
            await self._close(self._calls.pop(call_id))

    async def _take_over(self, call_id: str) -> _Call | None:
        if call_id in self._ended:
            return None
        route = await self._registry.lookup(call_id)
        if route is None:
            log.warning("call %s: realtime audio of a call not in the registry, dropped", call_id)
            self._ended.append(call_id)
            return None
        log.info("call %s: taking the call over, with a new session", call_id)
        return await self._open(
            call_id,
            self._agent_of(route.agent_id),
            audio_out=route.audio_out,
            gateway_id=route.gateway_id,
        )

    async def _open(
        self, call_id: str, agent: AgentSpec | None, *, audio_out: AudioFormat, gateway_id: str
    ) -> _Call | None:
        toolbox = self._toolbox_of(agent)
        model = agent.realtime if agent is not None else RealtimeModel()
        setup = SessionSetup(
            model=model,
            instructions=model.instructions
            or (agent.system_prompt if agent else None)
            or self._default_instructions,
            tools=toolbox.definitions(),
            history=await self._store.history(call_id),
            audio=audio_out,
        )
        try:
            session = await self._connector.open(setup)
        except Exception:
            log.exception("call %s: the realtime model's session did not open", call_id)
            self._ended.append(call_id)
            await self._turn_away(call_id)
            return None
        call = _Call(call_id, agent, audio_out, gateway_id, session)
        self._calls[call_id] = call
        call.listening = asyncio.create_task(
            self._listen(call, toolbox), name=f"realtime-{call_id}"
        )
        return call

    async def _turn_away(self, call_id: str) -> None:
        """Tell the caller, in TTS's voice, that the call cannot go on, then hang up."""
        reply_id = f"{call_id}:unavailable"
        for seq, text in enumerate((UNAVAILABLE, "")):
            chunk = ReplyTextChunk(
                reply_id=reply_id, in_reply_to=None, seq=seq, text=text, last=bool(seq)
            )
            await self._publish(call_id, REPLIES, chunk)
        hang_up = HangUp(reason="realtime model unavailable", after_reply=reply_id)
        await self._control.send(call_id, hang_up)

    async def _close(self, call: _Call) -> None:
        if call.listening is not None:
            call.listening.cancel()
            await asyncio.gather(call.listening, return_exceptions=True)
        with contextlib.suppress(Exception):
            await call.session.close()

    async def _listen(self, call: _Call, toolbox: Toolbox) -> None:
        """What the model tells, acted on in order, until its session ends."""
        try:
            async for event in call.session.events():
                try:
                    await self._act(call, event, toolbox)
                except Exception:
                    log.exception("call %s: %s not acted on", call.call_id, type(event).__name__)
        except Exception:
            log.exception("call %s: the realtime session failed", call.call_id)
        if self._calls.get(call.call_id) is call:  # lost, not closed: the next audio reopens it
            del self._calls[call.call_id]
            log.warning(
                "call %s: the realtime session ended; the next audio opens a new one", call.call_id
            )

    async def _act(self, call: _Call, event: SessionEvent, toolbox: Toolbox) -> None:
        call_id = call.call_id
        if isinstance(event, ModelAudio | ModelSaid) and event.response_id in call.interrupted:
            return  # already under way when the caller spoke over it
        match event:
            case CallerSpeaking(item_id=item_id, audio_start_ms=start_ms):
                turn_id = f"{call_id}:{item_id}"
                started = SpeechStarted(turn_id=turn_id, audio_offset_ms=start_ms)
                await self._publish(call_id, SPEECH, started)
                if call.replies:  # one may still be playing: the gateway tells how far it got
                    await self._control.send(call_id, PausePlayback(turn_id=turn_id))
            case CallerPaused(item_id=item_id, audio_end_ms=end_ms):
                turn_id = f"{call_id}:{item_id}"
                # The model hears the audio itself: no transcription stands between its end of
                # turn and its answer (the stt stage is 0; see `_stamped_first_audio`).
                now = time.time()
                stamps = StageStamps(
                    speech_ended=call.received_at(end_ms), turn_ended=now, transcribed=now
                )
                call.turn = (turn_id, stamps)
                stopped = SpeechStopped(turn_id=turn_id, audio_offset_ms=end_ms)
                await self._publish(call_id, SPEECH, stopped, stamps=stamps)
            case CallerSaid(item_id=item_id, text=text):
                turn_id = f"{call_id}:{item_id}"
                await self._store.append(call_id, Message(id=turn_id, role="user", text=text))
                await self._publish(
                    call_id, TRANSCRIPTS, FinalTranscript(turn_id=turn_id, text=text)
                )
            case ModelAudio(audio=audio, item_id=item_id, response_id=response_id):
                reply = call.reply or self._answer(call)
                reply.response_id, reply.item_id = response_id, item_id
                if not reply.chunk_ms:
                    reply.stamps = _stamped_first_audio(reply.stamps)
                chunk = OutboundAudioChunk(
                    reply_id=reply.reply_id,
                    sentence=0,
                    seq=len(reply.chunk_ms),
                    audio=audio,
                    format=call.audio_out,
                    last=False,
                )
                reply.chunk_ms.append(call.audio_out.duration_ms(len(audio)))
                await self._to_gateway(call, chunk, stamps=reply.stamps)
            case ModelSaid(text=text, response_id=response_id):
                reply = call.reply or self._answer(call)
                reply.response_id = response_id
                reply.text = text
                said = ReplyTextChunk(
                    reply_id=reply.reply_id,
                    in_reply_to=reply.in_reply_to,
                    seq=0,
                    text=text,
                    last=False,
                    voiced=True,
                )
                await self._publish(call.call_id, REPLIES, said, stamps=reply.stamps)
                message = Message(id=reply.reply_id, role="agent", text=text, sentences=(text,))
                await self._store.append(call_id, message)
            case ToolRequested(call_id=tool_call_id, name=name, arguments=arguments):
                reply_id = call.reply.reply_id if call.reply else f"{call_id}:tools"
                tool = ToolCall(id=tool_call_id, name=name, arguments=arguments)
                output = await toolbox.run(tool, call_id=call_id, reply_id=reply_id)
                await call.session.tool_result(tool_call_id, output)
                call.tools_answered = True
            case ResponseDone(response_id=response_id):
                call.interrupted.discard(response_id)
                await self._finish(call)
                if call.tools_answered:
                    call.tools_answered = False
                    await call.session.respond()

    def _answer(self, call: _Call) -> _Reply:
        """The reply a response of the model starts: to the caller's latest turn."""
        if call.turn is None:
            reply = _Reply(reply_id=f"{call.call_id}:said", in_reply_to=None, stamps=StageStamps())
        else:
            turn_id, stamps = call.turn
            reply = _Reply(reply_id=f"{turn_id}:reply", in_reply_to=turn_id, stamps=stamps)
        return call.begin(reply)

    async def _finish(self, call: _Call) -> None:
        """The response is over: its audio and its text end at the gateway and on record."""
        reply, call.reply = call.reply, None
        if reply is None:
            return
        if reply.chunk_ms:
            end = OutboundAudioChunk(
                reply_id=reply.reply_id,
                sentence=0,
                seq=len(reply.chunk_ms),
                audio=b"",
                format=call.audio_out,
                last=True,
            )
            await self._to_gateway(call, end, stamps=reply.stamps)
        last = ReplyTextChunk(
            reply_id=reply.reply_id,
            in_reply_to=reply.in_reply_to,
            seq=1,
            text="",
            last=True,
            voiced=True,
        )
        await self._publish(call.call_id, REPLIES, last, stamps=reply.stamps)

    async def _to_gateway(
        self, call: _Call, chunk: OutboundAudioChunk, *, stamps: StageStamps
    ) -> None:
        env = envelope(chunk, call_id=call.call_id, producer=SERVICE, stamps=stamps)
        await publish(self._broker, gateway_topic(call.gateway_id), env, confirm=False)

    async def _publish(
        self,
        call_id: str,
        topic: Topic,
        event: SpeechStarted | SpeechStopped | FinalTranscript | ReplyTextChunk | ReplyCancelled,
        *,
        stamps: StageStamps | None = None,
    ) -> None:
        env = envelope(event, call_id=call_id, producer=SERVICE, stamps=stamps)
        await publish(self._broker, topic, env)
