"""The calls live on this gateway replica, whatever their transport.

A transport (a Twilio media stream, a web call) connects a call with its sink and leg, relays the
caller's audio and keys, and disconnects it. The switchboard does what is the same for all of
them: the call's route in Redis, its start and end on the bus, its playback and recording, and the
reply audio and commands the bus addresses to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from functools import partial

from faststream.kafka import KafkaBroker

from voicebus_audio import dtmf_tones, from_mono_pcm16
from voicebus_contracts import (
    CallEnded,
    CallRoute,
    CallStarted,
    CancelReply,
    ClearPlayback,
    DtmfReceived,
    Envelope,
    GatewayEvent,
    HangUp,
    InboundAudioFrame,
    OutboundAudioChunk,
    PausePlayback,
    ReplyPaused,
    ReplyPlaybackStarted,
    ResumePlayback,
    SendDtmf,
    TransferCall,
    derived_id,
    envelope,
)
from voicebus_contracts.topics import AUDIO_IN, CALLS, PLAYBACK, REALTIME_AUDIO_IN
from voicebus_gateway.playback import Playback
from voicebus_gateway.ports import AudioSink, CallActivity, CallControlError, CallLeg
from voicebus_gateway.recording import CallRecorder, RecordedSink, Recordings
from voicebus_gateway.uplink import BUS_FRAME_MS, Uplink, apology_in
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import publish
from voicebus_runtime.metrics import call_ended, call_started
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.tracing import CallTrace

log = logging.getLogger(__name__)

SERVICE = "gateway"
HANG_UP_WAIT_LIMIT_S = 30.0
"""A hang-up after a reply waits at most this long for the caller to hear it."""


UPLINK_S = 10.0
"""Seconds of the caller's audio a call holds for a bus out of reach before it is shed."""


class CallAlreadyLiveError(Exception):
    """A second stream for a call this replica already holds."""


class NotTakingCallsError(Exception):
    """This replica is stopping: it finishes the calls it holds and takes no new one."""


@dataclass
class LiveCall:
    """One call whose caller is connected to this replica."""

    call_id: str
    started: CallStarted
    playback: Playback
    leg: CallLeg
    trace: CallTrace
    """The call's trace: its events are published under it."""
    uplink: Uplink | None = None
    """Takes the caller's audio to the bus (set once the call is live)."""
    ending: str | None = None
    """Why the call is being ended from our side (hang-up, transfer), once it is."""
    hanging_up: asyncio.Task[None] | None = None
    """A hang-up waiting for the caller to hear a last reply."""
    recorder: CallRecorder | None = None
    """Records the call; None when its agent's calls are not recorded."""


class Switchboard:
    """The live calls of gateway replica `gateway_id`."""

    def __init__(
        self,
        *,
        gateway_id: str,
        broker: KafkaBroker,
        registry: CallRegistry,
        playback_lead_s: float,
        recordings: Recordings,
        agents: AgentDirectory,
        uplink_s: float = UPLINK_S,
        bus_frame_ms: int = BUS_FRAME_MS,
    ) -> None:
        self.gateway_id = gateway_id
        self._broker = broker
        self._registry = registry
        self._playback_lead_s = playback_lead_s
        self._recordings = recordings
        self._agents = agents
        self._uplink_s = uplink_s
        self._bus_frame_ms = bus_frame_ms
        self._calls: dict[str, LiveCall] = {}
        self._taking_calls = True
        self._idle = asyncio.Event()
        self._idle.set()

    def __contains__(self, call_id: str) -> bool:
        return call_id in self._calls

    def live(self, call_id: str) -> LiveCall | None:
        """The call if its caller is connected here."""
        return self._calls.get(call_id)

    @property
    def taking_calls(self) -> bool:
        return self._taking_calls

    async def drain(self, timeout_s: float) -> int:
        """Take no new call, and wait up to `timeout_s` for the live ones to end on their own;
        how many are still live then."""
        self._taking_calls = False
        if self._calls:
            log.info(
                "stopping: no new calls; waiting up to %.0f s for %d live ones to end",
                timeout_s,
                len(self._calls),
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        return len(self._calls)

    async def connect(
        self, call_id: str, started: CallStarted, *, sink: AudioSink, leg: CallLeg
    ) -> LiveCall:
        """Make the call live here: routed to this replica, announced, ready to play."""
        if not self._taking_calls:
            raise NotTakingCallsError(f"gateway {self.gateway_id} is stopping")
        if call_id in self._calls:
            raise CallAlreadyLiveError(f"call {call_id} is already streaming")
        agent = self._agents.get(started.agent_id)
        if agent is not None and agent.pipeline != started.pipeline:
            started = started.model_copy(update={"pipeline": agent.pipeline})
        recorder = self._recordings.start(call_id, started)
        playback = Playback(
            call_id=call_id,
            sink=sink if recorder is None else RecordedSink(sink, recorder),
            audio_format=started.audio_out,
            on_reply_started=self._report_playback_started,
            lead_s=self._playback_lead_s,
        )
        call = LiveCall(
            call_id=call_id,
            started=started,
            playback=playback,
            leg=leg,
            trace=CallTrace(call_id, "call"),
            recorder=recorder,
        )
        # Claimed before the first await, so a second stream for the call is refused.
        self._calls[call_id] = call
        self._idle.clear()
        call_started(SERVICE)
        with call.trace.active():  # what the playback reports, and the uplink sends, too
            playback.start()
            call.uplink = Uplink(
                partial(self._publish_caller_audio, call),
                fmt=started.audio_in,
                frame_ms=self._bus_frame_ms,
                capacity_s=self._uplink_s,
                on_overflow=partial(self._shed, call),
            )
        route = CallRoute(
            call_id=call_id,
            gateway_id=self.gateway_id,
            transport=started.transport,
            agent_id=started.agent_id,
            audio_out=started.audio_out,
        )
        try:
            await self._registry.register(route)
            with call.trace.active():
                started_env = envelope(started, call_id=call_id, producer=SERVICE)
                await publish(self._broker, CALLS, started_env)
        except Exception:
            await self.disconnect(call_id, "gateway error")
            raise
        log.info(
            "call %s: started (%s %s, agent %s)",
            call_id,
            started.direction,
            started.transport,
            started.agent_id,
        )
        return call

    async def caller_audio(self, call: LiveCall, audio: bytes, *, received_at: float) -> None:
        """Send one frame of the caller's audio, in the call's inbound format, to the bus: at
        once, whatever state the bus is in (see `Uplink`)."""
        if call.recorder is not None:
            call.recorder.caller_spoke(audio)
        if call.uplink is not None:
            call.uplink.put(audio, received_at=received_at)

    async def _publish_caller_audio(self, call: LiveCall, frame: InboundAudioFrame) -> None:
        # The audio path never waits on the broker's ack.
        await publish(
            self._broker,
            REALTIME_AUDIO_IN if call.started.pipeline == "realtime" else AUDIO_IN,
            envelope(frame, call_id=call.call_id, producer=SERVICE),
            confirm=False,
        )

    def _shed(self, call: LiveCall) -> None:
        """The bus has taken none of the caller's audio for the whole uplink: the call cannot
        go on. The caller hears the apology, then the call is hung up."""
        log.error(
            "call %s: the bus has taken none of the caller's audio for %.0f s: the call is shed",
            call.call_id,
            self._uplink_s,
        )
        call.ending = "bus unreachable"
        call.playback.enqueue_tones(apology_in(call.started.audio_out))
        if call.hanging_up is None:
            call.hanging_up = asyncio.create_task(self._hang_up_when_played(call))

    async def _hang_up_when_played(self, call: LiveCall) -> None:
        await call.playback.played_out()
        await call.leg.hang_up()

    async def caller_pressed(self, call: LiveCall, digit: str) -> None:
        """The caller pressed a key."""
        pressed = envelope(DtmfReceived(digit=digit), call_id=call.call_id, producer=SERVICE)
        with call.trace.active():
            await publish(self._broker, CALLS, pressed)
        log.info("call %s: caller pressed %s", call.call_id, digit)

    async def disconnect(self, call_id: str, reason: str) -> None:
        """The caller's stream is gone: stop playing, announce the end, drop the route."""
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        if not self._calls:
            self._idle.set()
        call_ended(SERVICE)
        if call.uplink is not None:
            await call.uplink.close()
        await call.playback.stop()
        if call.hanging_up is not None:
            call.hanging_up.cancel()
        if call.recorder is not None:
            await call.recorder.finish()
        reason = call.ending or reason
        try:
            ended = envelope(CallEnded(reason=reason), call_id=call_id, producer=SERVICE)
            with call.trace.active():
                await publish(self._broker, CALLS, ended)
        except Exception:
            log.exception("call %s: CallEnded not published", call_id)
        finally:
            call.trace.end()
        await self._registry.forget(call_id, gateway_id=self.gateway_id)
        log.info("call %s: ended (%s)", call_id, reason)

    async def deliver(self, env: Envelope[GatewayEvent]) -> None:
        """Reply audio or a command the bus addressed to one of this replica's calls."""
        call = self._calls.get(env.call_id)
        if call is None:
            log.info("call %s: %s dropped, the call is not live here", env.call_id, env.event.type)
            return
        match env.event:
            case OutboundAudioChunk():
                call.playback.enqueue(env)  # type: ignore[arg-type]  # narrowed by the match
            case ClearPlayback():
                await call.playback.clear()
            case PausePlayback(turn_id=turn_id):
                await self._pause(call, turn_id, cause=env)
            case ResumePlayback():
                call.playback.resume()
                log.info("call %s: the agent carries on speaking", env.call_id)
            case CancelReply(reply_id=reply_id):
                call.playback.cancel(reply_id)
                log.info("call %s: reply %s cancelled", env.call_id, reply_id)
            case SendDtmf(digits=digits):
                fmt = call.started.audio_out
                tones = dtmf_tones(digits, sample_rate=fmt.sample_rate)
                call.playback.enqueue_tones(from_mono_pcm16(tones, fmt))
                log.info("call %s: pressing %s", env.call_id, digits)
            case HangUp(reason=reason, after_reply=None):
                call.ending = reason
                await call.leg.hang_up()
            case HangUp(reason=reason, after_reply=str(reply_id)):
                call.ending = reason
                if call.hanging_up is None:
                    call.hanging_up = asyncio.create_task(self._hang_up_after(call, reply_id))
            case TransferCall(to=to):
                await self._transfer(call, to)

    async def _pause(self, call: LiveCall, turn_id: str, *, cause: Envelope[GatewayEvent]) -> None:
        """The caller started speaking: silence the agent, and tell how far it was heard."""
        paused = await call.playback.pause()
        if paused is None:
            return
        log.info(
            "call %s: caller spoke over reply %s: paused at sentence %d (%.0f%% heard)",
            call.call_id,
            paused.reply_id,
            paused.sentence,
            100 * paused.fraction,
        )
        event = ReplyPaused(
            reply_id=paused.reply_id,
            turn_id=turn_id,
            sentence=paused.sentence,
            fraction=paused.fraction,
        )
        await publish(
            self._broker,
            PLAYBACK,
            envelope(
                event,
                call_id=call.call_id,
                producer=SERVICE,
                event_id=derived_id(cause.event_id, "playback.paused"),
            ),
        )

    async def _hang_up_after(self, call: LiveCall, reply_id: str) -> None:
        """Hang up once the caller heard `reply_id` (or after HANG_UP_WAIT_LIMIT_S)."""
        log.info("call %s: hanging up after reply %s", call.call_id, reply_id)
        try:
            async with asyncio.timeout(HANG_UP_WAIT_LIMIT_S):
                await call.playback.heard_whole(reply_id)
        except TimeoutError:
            log.warning("call %s: reply %s not heard to its end in time", call.call_id, reply_id)
        call.hanging_up = None  # the wait is over; the hang-up itself is not to be cancelled
        try:
            await call.leg.hang_up()
        except Exception:
            log.exception("call %s: hang-up after reply %s failed", call.call_id, reply_id)

    async def _transfer(self, call: LiveCall, to: str) -> None:
        call.ending = f"transferred to {to}"
        try:
            await call.leg.transfer(to)
        except CallControlError as refused:
            call.ending = None
            log.warning("call %s: transfer to %s refused: %s", call.call_id, to, refused)
        except Exception:
            call.ending = None
            log.exception("call %s: transfer to %s failed", call.call_id, to)
        else:
            log.info("call %s: transferred to %s", call.call_id, to)

    async def show(self, env: Envelope[CallActivity]) -> None:
        """Pass what is happening in one of this replica's calls to its client."""
        call = self._calls.get(env.call_id)
        if call is None:
            return
        try:
            await call.leg.show(env.event)
        except Exception:
            log.warning("call %s: activity not shown to the caller", env.call_id, exc_info=True)

    async def disconnect_all(self, reason: str) -> None:
        for call_id in list(self._calls):
            await self.disconnect(call_id, reason)

    async def _report_playback_started(self, chunk: Envelope[OutboundAudioChunk]) -> None:
        started = envelope(
            ReplyPlaybackStarted(reply_id=chunk.event.reply_id),
            call_id=chunk.call_id,
            producer=SERVICE,
            stamps=chunk.stamps.stamp(playback_started=time.time()),
            event_id=derived_id(chunk.event_id, "playback.started"),
        )
        # Playback is paced in real time: it does not wait for the broker's ack.
        await publish(self._broker, PLAYBACK, started, confirm=False)
